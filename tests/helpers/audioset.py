"""Random-weight AudioSet encoder files in their release formats, for offline tests.

- `write_tiny_yamnet`: a .tflite flatbuffer written with the schema's builder (the `tflite` package) holding
  YAMNet's operator sequence at a small width: the waveform front end (window, two DFT products, the mel
  matrix with its 0.001 bias, log), a stride-2 stem, depthwise-separable pairs, the mean and the dense
  classifier. Like the release it mixes float32 and int8 constants (per-tensor and per-channel scales) and
  reaches one depthwise weight through a DEQUANTIZE operator. Only constants and operator options matter to
  ser (it rebuilds the network), so activations carry shapes but no data.
- `efficientat_state_dict`: the key names and shapes of an EfficientAT release .pt, generated here from the
  MobileNetV3-Large table and the release's width rounding (not from ser's module), with random values.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

YAMNET_BLOCKS = ((8, 1), (8, 2), (16, 2))  # (pointwise width, depthwise stride)
YAMNET_STEM, YAMNET_CLASSES = 4, 5


def quantize(w: np.ndarray, axis: int | None) -> tuple[np.ndarray, np.ndarray]:
    """int8 values and scales (per tensor, or per channel along `axis`), symmetric like TFLite's."""
    if axis is None:
        scale = np.array([np.abs(w).max() / 127.0], np.float32)
        return np.clip(np.round(w / scale[0]), -127, 127).astype(np.int8), scale
    moved = np.moveaxis(w, axis, 0)
    scale = (np.abs(moved).reshape(len(moved), -1).max(axis=1) / 127.0).astype(np.float32)
    view = [1] * w.ndim
    view[axis] = len(scale)
    return np.clip(np.round(w / scale.reshape(view)), -127, 127).astype(np.int8), scale


class _Graph:
    """Collects tensors, buffers and operators, then writes one flatbuffer."""

    def __init__(self) -> None:
        self.tensors: list[dict[str, Any]] = []
        self.buffers: list[bytes] = [b""]  # buffer 0: the empty buffer every activation points at
        self.ops: list[tuple[str, list[int], list[int], dict | None]] = []

    def act(self, shape: tuple[int, ...]) -> int:
        self.tensors.append({"shape": shape, "type": 0, "buffer": 0, "quant": None})
        return len(self.tensors) - 1

    def const(self, value: np.ndarray, quant_axis: int | None | str = "float") -> int:
        value = np.asarray(value)
        quant = None
        if quant_axis == "float":
            data, kind = value.astype(np.float32), 0
        elif value.dtype == np.int32:
            data, kind = value, 2
        else:
            data, scale = quantize(value.astype(np.float32), quant_axis)
            kind, quant = 9, (scale, 0 if quant_axis is None else quant_axis)
        self.buffers.append(data.tobytes())
        self.tensors.append(
            {"shape": value.shape, "type": kind, "buffer": len(self.buffers) - 1, "quant": quant}
        )
        return len(self.tensors) - 1

    def op(self, name: str, inputs: list[int], out_shape: tuple[int, ...], conv: dict | None = None) -> int:
        out = self.act(out_shape)
        self.ops.append((name, inputs, [out], conv))
        return out

    def write(self, path: Path, inputs: list[int], outputs: list[int]) -> Path:
        import flatbuffers
        import tflite

        b = flatbuffers.Builder(1 << 16)

        def ints(values, dtype=np.int32):
            return b.CreateNumpyVector(np.asarray(values, dtype=dtype))

        def table_vector(start, offsets):
            start(b, len(offsets))
            for off in reversed(offsets):
                b.PrependUOffsetTRelative(off)
            return b.EndVector()

        buffers = []
        for data in self.buffers:
            vec = b.CreateNumpyVector(np.frombuffer(data, np.uint8)) if data else None
            tflite.BufferStart(b)
            if vec is not None:
                tflite.BufferAddData(b, vec)
            buffers.append(tflite.BufferEnd(b))
        tensors = []
        for k, t in enumerate(self.tensors):
            name, shape = b.CreateString(f"t{k}"), ints(t["shape"])
            quant = None
            if t["quant"] is not None:
                scale, axis = t["quant"]
                scales, zeros = b.CreateNumpyVector(scale), ints(np.zeros(len(scale)), np.int64)
                tflite.QuantizationParametersStart(b)
                tflite.QuantizationParametersAddScale(b, scales)
                tflite.QuantizationParametersAddZeroPoint(b, zeros)
                tflite.QuantizationParametersAddQuantizedDimension(b, axis)
                quant = tflite.QuantizationParametersEnd(b)
            tflite.TensorStart(b)
            tflite.TensorAddShape(b, shape)
            tflite.TensorAddType(b, t["type"])
            tflite.TensorAddBuffer(b, t["buffer"])
            tflite.TensorAddName(b, name)
            if quant is not None:
                tflite.TensorAddQuantization(b, quant)
            tensors.append(tflite.TensorEnd(b))
        names = sorted({name for name, *_ in self.ops})
        codes = []
        for name in names:
            number = getattr(tflite.BuiltinOperator, name)
            tflite.OperatorCodeStart(b)
            tflite.OperatorCodeAddBuiltinCode(b, number)
            tflite.OperatorCodeAddDeprecatedBuiltinCode(b, min(number, 127))
            tflite.OperatorCodeAddVersion(b, 1)
            codes.append(tflite.OperatorCodeEnd(b))
        operators = []
        for name, ins, outs, conv in self.ops:
            options = None
            if conv is not None:
                prefix = "Conv2DOptions" if name == "CONV_2D" else "DepthwiseConv2DOptions"
                getattr(tflite, f"{prefix}Start")(b)
                getattr(tflite, f"{prefix}AddPadding")(b, tflite.Padding.SAME)
                getattr(tflite, f"{prefix}AddStrideW")(b, conv["stride"])
                getattr(tflite, f"{prefix}AddStrideH")(b, conv["stride"])
                getattr(tflite, f"{prefix}AddFusedActivationFunction")(b, tflite.ActivationFunctionType.RELU)
                options = getattr(tflite, f"{prefix}End")(b)
            in_vec, out_vec = ints(ins), ints(outs)
            tflite.OperatorStart(b)
            tflite.OperatorAddOpcodeIndex(b, names.index(name))
            tflite.OperatorAddInputs(b, in_vec)
            tflite.OperatorAddOutputs(b, out_vec)
            if options is not None:
                kind = tflite.BuiltinOptions.Conv2DOptions if name == "CONV_2D" else None
                kind = kind or tflite.BuiltinOptions.DepthwiseConv2DOptions
                tflite.OperatorAddBuiltinOptionsType(b, kind)
                tflite.OperatorAddBuiltinOptions(b, options)
            operators.append(tflite.OperatorEnd(b))
        tensor_vec = table_vector(tflite.SubGraphStartTensorsVector, tensors)
        op_vec = table_vector(tflite.SubGraphStartOperatorsVector, operators)
        in_vec, out_vec, graph_name = ints(inputs), ints(outputs), b.CreateString("main")
        tflite.SubGraphStart(b)
        tflite.SubGraphAddTensors(b, tensor_vec)
        tflite.SubGraphAddInputs(b, in_vec)
        tflite.SubGraphAddOutputs(b, out_vec)
        tflite.SubGraphAddOperators(b, op_vec)
        tflite.SubGraphAddName(b, graph_name)
        graph = tflite.SubGraphEnd(b)
        code_vec = table_vector(tflite.ModelStartOperatorCodesVector, codes)
        graph_vec = table_vector(tflite.ModelStartSubgraphsVector, [graph])
        buffer_vec = table_vector(tflite.ModelStartBuffersVector, buffers)
        description = b.CreateString("tiny random YAMNet for tests")
        tflite.ModelStart(b)
        tflite.ModelAddVersion(b, 3)
        tflite.ModelAddOperatorCodes(b, code_vec)
        tflite.ModelAddSubgraphs(b, graph_vec)
        tflite.ModelAddDescription(b, description)
        tflite.ModelAddBuffers(b, buffer_vec)
        b.Finish(tflite.ModelEnd(b), file_identifier=b"TFL3")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(bytes(b.Output()))
        return path


def write_tiny_yamnet(path: Path, seed: int = 0) -> dict[str, np.ndarray]:
    """A tiny random YAMNet .tflite at `path`; returns the float weights it holds (int8 ones as the
    dequantised values), in TFLite's layouts, keyed stem / dw{i} / pw{i} / classifier (+ _bias), and the
    front-end constants (window, dft_real, dft_imag, mel, mel_bias)."""
    from ser.data.encoders.yamnet import PATCH_SAMPLES, canonical_frontend

    rng = np.random.default_rng(seed)
    front = canonical_frontend()
    g = _Graph()
    wave = g.act((1, PATCH_SAMPLES))
    x = g.op("MUL", [wave, g.const(front["window"][None])], (96, 400))
    real = g.op("FULLY_CONNECTED", [x, g.const(front["dft_real"], None), -1], (96, 257))
    imag = g.op("FULLY_CONNECTED", [x, g.const(front["dft_imag"]), -1], (96, 257))
    mag = g.op("SQRT", [real, imag], (96, 257))
    mel = g.op("FULLY_CONNECTED", [mag, g.const(front["mel"]), g.const(front["mel_bias"])], (96, 64))
    x = g.op("LOG", [mel], (1, 96, 64, 1))
    stored = {**front, "dft_real": _dequantized(front["dft_real"], None)}
    stem = rng.normal(0, 0.5, (YAMNET_STEM, 3, 3, 1)).astype(np.float32)
    stored["stem"], stored["stem_bias"] = stem, rng.normal(0, 0.1, YAMNET_STEM).astype(np.float32)
    x = g.op("CONV_2D", [x, g.const(stem), g.const(stored["stem_bias"])], (1, 48, 32, 4), {"stride": 2})
    channels = YAMNET_STEM
    for i, (width, stride) in enumerate(YAMNET_BLOCKS):
        dw = rng.normal(0, 0.5, (1, 3, 3, channels)).astype(np.float32)
        if i == 0:  # int8 behind a DEQUANTIZE, as the release stores most depthwise weights
            stored[f"dw{i}"] = _dequantized(dw, None)
            dw_in = g.op("DEQUANTIZE", [g.const(dw, None)], dw.shape)
        else:
            stored[f"dw{i}"], dw_in = dw, g.const(dw)
        stored[f"dw{i}_bias"] = rng.normal(0, 0.1, channels).astype(np.float32)
        x = g.op(
            "DEPTHWISE_CONV_2D",
            [x, dw_in, g.const(stored[f"dw{i}_bias"])],
            (1, 8, 8, channels),
            {"stride": stride},
        )
        pw = rng.normal(0, 0.5, (width, 1, 1, channels)).astype(np.float32)
        stored[f"pw{i}"], stored[f"pw{i}_bias"] = (
            _dequantized(pw, 0),
            rng.normal(0, 0.1, width).astype(np.float32),
        )
        x = g.op(
            "CONV_2D", [x, g.const(pw, 0), g.const(stored[f"pw{i}_bias"])], (1, 8, 8, width), {"stride": 1}
        )
        channels = width
    x = g.op("MEAN", [x, g.const(np.array([1, 2], np.int32), None)], (1, channels))
    dense = rng.normal(0, 0.5, (YAMNET_CLASSES, channels)).astype(np.float32)
    stored["classifier"], stored["classifier_bias"] = (
        _dequantized(dense, None),
        np.zeros(YAMNET_CLASSES, np.float32),
    )
    x = g.op(
        "FULLY_CONNECTED", [x, g.const(dense, None), g.const(stored["classifier_bias"])], (1, YAMNET_CLASSES)
    )
    scores = g.op("LOGISTIC", [x], (1, YAMNET_CLASSES))
    g.write(path, [wave], [scores])
    return stored


def _dequantized(w: np.ndarray, axis: int | None) -> np.ndarray:
    q, scale = quantize(w, axis)
    view = [1] * w.ndim
    if axis is not None:
        view[axis] = len(scale)
    return q.astype(np.float32) * scale.reshape(view)


# ---- EfficientAT -----------------------------------------------------------------------------------
# MobileNetV3-Large: (in, kernel, expanded, out, squeeze-excitation)
MOBILENET_V3 = (
    (16, 3, 16, 16, False), (16, 3, 64, 24, False), (24, 3, 72, 24, False), (24, 5, 72, 40, True),
    (40, 5, 120, 40, True), (40, 5, 120, 40, True), (40, 3, 240, 80, False), (80, 3, 200, 80, False),
    (80, 3, 184, 80, False), (80, 3, 184, 80, False), (80, 3, 480, 112, True), (112, 3, 672, 112, True),
    (112, 5, 672, 160, True), (160, 5, 960, 160, True), (160, 5, 960, 160, True),
)  # fmt: skip


def divisible(v: float, divisor: int = 8) -> int:
    new = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * v else new


def efficientat_state_dict(width: float = 0.1, classes: int = 7, seed: int = 0) -> dict[str, Any]:
    """Random tensors under the release's names and shapes for width multiplier `width`."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    state: dict[str, Any] = {}

    def conv_bn(prefix: str, cout: int, cin_per_group: int, kernel: int) -> None:
        state[f"{prefix}.0.weight"] = torch.randn(cout, cin_per_group, kernel, kernel, generator=gen) * 0.3
        state[f"{prefix}.1.weight"] = 1 + 0.1 * torch.randn(cout, generator=gen)
        state[f"{prefix}.1.bias"] = 0.1 * torch.randn(cout, generator=gen)
        state[f"{prefix}.1.running_mean"] = 0.1 * torch.randn(cout, generator=gen)
        state[f"{prefix}.1.running_var"] = 0.5 + torch.rand(cout, generator=gen)
        state[f"{prefix}.1.num_batches_tracked"] = torch.tensor(0)

    stem = divisible(16 * width)
    conv_bn("features.0", stem, 1, 3)
    for i, (cin, kernel, mid, out, se) in enumerate(MOBILENET_V3, start=1):
        cin, mid, out = divisible(cin * width), divisible(mid * width), divisible(out * width)
        j = 0
        if mid != cin:
            conv_bn(f"features.{i}.block.{j}", mid, cin, 1)
            j += 1
        conv_bn(f"features.{i}.block.{j}", mid, 1, kernel)
        j += 1
        if se:
            squeeze = divisible(mid // 4)
            base = f"features.{i}.block.{j}.conc_se_layers.0"
            state[f"{base}.fc1.weight"] = torch.randn(squeeze, mid, generator=gen) * 0.3
            state[f"{base}.fc1.bias"] = torch.zeros(squeeze)
            state[f"{base}.fc2.weight"] = torch.randn(mid, squeeze, generator=gen) * 0.3
            state[f"{base}.fc2.bias"] = torch.zeros(mid)
            j += 1
        conv_bn(f"features.{i}.block.{j}", out, mid, 1)
    last = divisible(160 * width)
    conv_bn("features.16", 6 * last, last, 1)
    hidden = divisible(1280 * width)
    state["classifier.2.weight"] = torch.randn(hidden, 6 * last, generator=gen) * 0.1
    state["classifier.2.bias"] = torch.zeros(hidden)
    state["classifier.5.weight"] = torch.randn(classes, hidden, generator=gen) * 0.1
    state["classifier.5.bias"] = torch.zeros(classes)
    return state


def write_tiny_efficientat(path: Path, width: float = 0.1, seed: int = 0) -> Path:
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(efficientat_state_dict(width, seed=seed), path)
    return path
