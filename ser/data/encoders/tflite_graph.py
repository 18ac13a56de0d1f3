"""A TFLite flatbuffer as a plain list of operators with their constant inputs as float32 numpy arrays.

Parsed with the maintained `tflite` package (the flatbuffer schema's generated reader; the `audioset`
extra) rather than run with LiteRT: ser needs the weights, not an interpreter, so it can rebuild the network
in PyTorch (to train it, batch it, run it on a GPU); only the check script (bench/audioset_check.py), which
compares the two, needs the LiteRT wheel. Quantised constants (int8 / uint8 / int16 / int32 with
per-tensor or per-channel scales) are dequantised: w = (q - zero_point) * scale along the quantised axis.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

# tflite.TensorType -> numpy dtype, for the types a weight file holds
DTYPES = {0: np.float32, 1: np.float16, 2: np.int32, 3: np.uint8, 4: np.int64, 7: np.int16, 9: np.int8}
MAGIC = b"TFL3"  # the file identifier at bytes 4..8 of every TFLite flatbuffer


class TFLiteFormatError(ValueError):
    """The file is not a TFLite model this reader understands (the caller names the file)."""


@dataclass
class Op:
    """One operator: its builtin name, its input/output tensor indices and the constants among its inputs."""

    name: str
    inputs: list[int]
    outputs: list[int]
    consts: dict[int, np.ndarray] = field(repr=False)  # tensor index -> dequantised float32 value
    options: dict[str, Any]

    def const(self, position: int) -> np.ndarray | None:
        """The constant at input `position`, or None when that input is an activation."""
        if position >= len(self.inputs):
            return None
        return self.consts.get(self.inputs[position])


def require_tflite():
    try:
        import tflite
    except ImportError:
        from ser.config import ConfigError
        from ser.extras import install_hint

        raise ConfigError(
            "invalid config key 'model.encoder': reading a .tflite file needs the optional extra: "
            f"{install_hint('audioset')} (the tflite flatbuffer parser)"
        ) from None
    return tflite


def _names(namespace: Any) -> dict[int, str]:
    return {v: k for k, v in vars(namespace).items() if not k.startswith("_") and isinstance(v, int)}


def _tensor_value(model: Any, tensor: Any) -> np.ndarray | None:
    """A constant tensor's value as float32 (dequantised), or None for activations (empty buffers)."""
    data = model.Buffers(tensor.Buffer()).DataAsNumpy() if tensor.Buffer() < model.BuffersLength() else 0
    if isinstance(data, int) or data.size == 0:
        return None
    kind = tensor.Type()
    if kind not in DTYPES:
        name = tensor.Name().decode(errors="replace")
        raise TFLiteFormatError(f"tensor {name} has unsupported type {kind}")
    shape = [int(d) for d in tensor.ShapeAsNumpy()] if tensor.ShapeLength() else []
    value = np.frombuffer(data.tobytes(), dtype=DTYPES[kind]).reshape(shape)
    quant = tensor.Quantization()
    if quant is not None and quant.ScaleLength() and kind != 0:
        scale = quant.ScaleAsNumpy().astype(np.float32)
        zero = np.zeros_like(scale)
        if quant.ZeroPointLength():
            zero = quant.ZeroPointAsNumpy().astype(np.float32)
        axis = int(quant.QuantizedDimension()) if scale.size > 1 else 0
        view = [1] * value.ndim
        if scale.size > 1:
            view[axis] = scale.size
        value = (value.astype(np.float32) - zero.reshape(view)) * scale.reshape(view)
    return value.astype(np.float32)


def _options(tflite: Any, op: Any, name: str) -> dict[str, Any]:
    """Strides, padding and fused activation of convolutions (what rebuilding the network needs)."""
    table = op.BuiltinOptions()
    if table is None or name not in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        return {}
    options = tflite.Conv2DOptions() if name == "CONV_2D" else tflite.DepthwiseConv2DOptions()
    options.Init(table.Bytes, table.Pos)
    padding = _names(tflite.Padding)
    activation = _names(tflite.ActivationFunctionType)
    return {
        "stride": (int(options.StrideH()), int(options.StrideW())),
        "padding": padding.get(options.Padding(), str(options.Padding())),
        "activation": activation.get(options.FusedActivationFunction(), "?"),
    }


def read_graph(path: Path) -> list[Op]:
    """The operators of `path`'s first subgraph, in execution order; TFLiteFormatError if it is not one."""
    tflite = require_tflite()
    data = Path(path).read_bytes()
    if len(data) < 8 or data[4:8] != MAGIC:
        raise TFLiteFormatError("not a TFLite flatbuffer (no TFL3 identifier)")
    try:
        model = tflite.Model.GetRootAsModel(data, 0)
        if model.SubgraphsLength() < 1:
            raise TFLiteFormatError("the model has no subgraph")
        graph = model.Subgraphs(0)
        builtin = _names(tflite.BuiltinOperator)
        ops: list[Op] = []
        for k in range(graph.OperatorsLength()):
            op = graph.Operators(k)
            code = model.OperatorCodes(op.OpcodeIndex())
            number = max(int(code.BuiltinCode()), int(code.DeprecatedBuiltinCode()))
            name = builtin.get(number, f"OP{number}")
            inputs = [int(i) for i in op.InputsAsNumpy()] if op.InputsLength() else []
            outputs = [int(i) for i in op.OutputsAsNumpy()] if op.OutputsLength() else []
            consts = {}
            for index in inputs:
                if index >= 0:
                    value = _tensor_value(model, graph.Tensors(index))
                    if value is not None:
                        consts[index] = value
            ops.append(Op(name, inputs, outputs, consts, _options(tflite, op, name)))
    except TFLiteFormatError:
        raise
    except Exception as exc:  # a truncated or corrupt flatbuffer fails somewhere inside the reader
        raise TFLiteFormatError(f"unreadable flatbuffer ({type(exc).__name__}: {exc})") from None
    # DEQUANTIZE ops turn an int8 constant into the float input of the next op: fold them into constants
    produced = {op.outputs[0]: op.const(0) for op in ops if op.name == "DEQUANTIZE"}
    produced = {k: v for k, v in produced.items() if v is not None}
    for op in ops:
        for index in op.inputs:
            if index in produced:
                op.consts[index] = produced[index]
    return [op for op in ops if op.name != "DEQUANTIZE"]
