"""YAMNet (Google's AudioSet classifier, MobileNetV1 on 0.96 s log-mel patches) in PyTorch, from its .tflite.

The TFLite release takes the waveform: its graph holds the front end as operators (400-sample frames every
160 samples, a periodic Hann window, zero-padding to 512, the DFT as two matrix products, the magnitude, a
64-band mel matrix whose bias is the 0.001 log offset, the natural log, 96-frame patches), then the network
(a 3x3 convolution, 13 depthwise-separable blocks with ReLU, batch norm already folded into every
convolution's weights and bias, TensorFlow's SAME padding), a global mean (the 1024-d embedding) and a
521-way dense layer with a sigmoid. Everything is read from the file's operators in order: the front end's
constants, the convolutions' weights (int8 ones dequantised), strides and channels, so a file of another width
loads too. Longer clips are padded and cut into patches every 0.48 s as YAMNet's own code does.

Shapes: waveforms [B, samples] -> patches [B, P, 96, 64] -> embeddings [B, P, 1024] / scores [B, P, 521].
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

SAMPLE_RATE = 16000
FRAME, HOP, FFT = 400, 160, 512  # 25 ms windows every 10 ms, zero-padded to 512 points
N_MELS, MEL_LOW, MEL_HIGH, LOG_OFFSET = 64, 125.0, 7500.0, 0.001
PATCH, PATCH_HOP = 96, 48  # 0.96 s patches every 0.48 s
PATCH_SAMPLES = (PATCH - 1) * HOP + FRAME  # 15,600: the TFLite release's fixed input
PATCH_HOP_SAMPLES = PATCH_HOP * HOP  # 7,680


class YamnetFormatError(ValueError):
    """The file's graph is not YAMNet's layout (the caller names the file)."""


def hertz_to_mel(hz: np.ndarray) -> np.ndarray:
    return 1127.0 * np.log1p(np.asarray(hz, dtype=np.float64) / 700.0)


def canonical_frontend() -> dict[str, np.ndarray]:
    """The front end's constants computed from YAMNet's parameters (as tf.signal builds them: a periodic Hann
    window, the real DFT, HTK-mel triangles between band edges spaced evenly in mel, the DC bin zeroed); the
    release file stores these, int8-quantised; tests build files from them."""
    n = np.arange(FRAME)
    window = 0.5 - 0.5 * np.cos(2 * np.pi * n / FRAME)
    k = np.arange(FFT // 2 + 1)[:, None]
    angle = 2 * np.pi * k * np.arange(FFT)[None, :] / FFT
    bins = hertz_to_mel(np.linspace(0.0, SAMPLE_RATE / 2, FFT // 2 + 1)[1:])[:, None]
    edges = np.linspace(hertz_to_mel(MEL_LOW), hertz_to_mel(MEL_HIGH), N_MELS + 2)
    lower, center, upper = edges[:-2], edges[1:-1], edges[2:]
    slopes = np.minimum((bins - lower) / (center - lower), (upper - bins) / (upper - center))
    mel = np.concatenate([np.zeros((1, N_MELS)), np.maximum(slopes, 0.0)], axis=0)  # [257, 64]
    return {
        "window": window.astype(np.float32),
        "dft_real": np.cos(angle).astype(np.float32),
        "dft_imag": np.sin(angle).astype(np.float32),  # the sign the release uses; |X| is the same
        "mel": mel.T.astype(np.float32),  # [64, 257]
        "mel_bias": np.full(N_MELS, LOG_OFFSET, dtype=np.float32),
    }


def pad_waveform(wave: torch.Tensor) -> torch.Tensor:
    """Zeros after the clip up to one whole patch and then to a whole number of patch hops (YAMNet's own
    padding), so every sample lands in a patch and a short clip still gives one."""
    n = wave.shape[-1]
    total = max(n, PATCH_SAMPLES)
    hops = -(-(total - PATCH_SAMPLES) // PATCH_HOP_SAMPLES)
    return nn.functional.pad(wave, (0, PATCH_SAMPLES + hops * PATCH_HOP_SAMPLES - n))


def n_patches(n_samples: int) -> int:
    return 1 + -(-(max(n_samples, PATCH_SAMPLES) - PATCH_SAMPLES) // PATCH_HOP_SAMPLES)


class YamnetFrontEnd(nn.Module):
    """[B, samples] -> log-mel patches [B, P, 96, 64], with the constants the file holds (buffers, so a
    checkpoint carries them)."""

    def __init__(self, constants: dict[str, np.ndarray]) -> None:
        super().__init__()
        for name in ("window", "dft_real", "dft_imag", "mel", "mel_bias"):
            self.register_buffer(name, torch.as_tensor(np.asarray(constants[name], dtype=np.float32)))

    def log_mel(self, wave: torch.Tensor) -> torch.Tensor:
        """[B, samples] (already padded) -> [B, frames, 64]."""
        frames = wave.float().unfold(-1, FRAME, HOP) * self.window.reshape(-1)
        frames = nn.functional.pad(frames, (0, self.dft_real.shape[1] - FRAME))
        real, imag = frames @ self.dft_real.T, frames @ self.dft_imag.T
        magnitude = torch.sqrt(real.square() + imag.square())
        return torch.log(magnitude @ self.mel.T + self.mel_bias)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        mel = self.log_mel(pad_waveform(wave.float()))
        return mel.unfold(1, PATCH, PATCH_HOP).transpose(-1, -2)  # [B, P, 96, 64]


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow's SAME padding (more after than before when the total is odd)."""
    total = max((-(-size // stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class SameConv(nn.Conv2d):
    """A convolution with TensorFlow's SAME padding and a fused ReLU (YAMNet's every layer)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        top, bottom = same_padding(x.shape[-2], kh, sh)
        left, right = same_padding(x.shape[-1], kw, sw)
        return torch.relu(super().forward(nn.functional.pad(x, (left, right, top, bottom))))


class YamnetNet(nn.Module):
    """Patches [N, 96, 64] -> (embeddings [N, C], logits [N, classes]); `layout`: the stem's and each
    separable block's (out channels, stride, kernel), as read from a file."""

    def __init__(self, layout: dict[str, Any]) -> None:
        super().__init__()
        stem_out, stem_stride, stem_kernel = layout["stem"]
        layers: list[nn.Module] = [SameConv(1, stem_out, stem_kernel, stem_stride)]
        channels = stem_out
        for out, stride, kernel in layout["blocks"]:
            layers.append(SameConv(channels, channels, kernel, stride, groups=channels))
            layers.append(SameConv(channels, out, 1))
            channels = out
        self.layers = nn.Sequential(*layers)
        self.classifier = nn.Linear(channels, int(layout["classes"]))
        self.dim = channels

    def forward(self, patches: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        maps = self.layers(patches.unsqueeze(1))  # [N, 1, 96 (time), 64 (mel)] as the file's NHWC
        embedding = maps.mean(dim=(-2, -1))
        return embedding, self.classifier(embedding)


class Yamnet(nn.Module):
    """The front end and the network: waveforms [B, samples] -> embeddings [B, P, C] (forward) or AudioSet
    scores [B, P, classes] (`scores`)."""

    sample_rate = SAMPLE_RATE

    def __init__(self, layout: dict[str, Any], constants: dict[str, np.ndarray] | None = None) -> None:
        super().__init__()
        self.frontend = YamnetFrontEnd(constants or canonical_frontend())
        self.net = YamnetNet(layout)
        self.dim = self.net.dim

    def both(self, wave: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        patches = self.frontend(wave)
        b, p = patches.shape[:2]
        embedding, logits = self.net(patches.reshape(b * p, *patches.shape[2:]))
        return embedding.reshape(b, p, -1), logits.reshape(b, p, -1)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        return self.both(wave)[0]

    def scores(self, wave: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.both(wave)[1])

    def stem_parameters(self):
        return self.net.layers[0].parameters()


# ---- reading the TFLite file --------------------------------------------------------------------------
def _conv_weight(op: Any, depthwise: bool) -> np.ndarray:
    """TFLite's [out, kh, kw, in] (conv) or [1, kh, kw, C] (depthwise) -> torch's [out, in/groups, kh, kw]."""
    weight = op.const(1)
    if weight is None or weight.ndim != 4:
        raise YamnetFormatError(f"a {op.name} without a constant 4-d weight")
    return weight.transpose(3, 0, 1, 2) if depthwise else weight.transpose(0, 3, 1, 2)


def parse_tflite(ops: list[Any]) -> tuple[dict[str, Any], dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(layout, front-end constants, torch state dict of YamnetNet) from the graph's operators."""
    names = [op.name for op in ops]
    if "CONV_2D" not in names:
        raise YamnetFormatError("no CONV_2D operator: not a YAMNet graph")
    first_conv = names.index("CONV_2D")
    front = ops[:first_conv]
    dense = [op for op in front if op.name == "FULLY_CONNECTED"]
    windows = [op for op in front if op.name == "MUL" and any(v.size == FRAME for v in op.consts.values())]
    if len(dense) != 3 or not windows:
        raise YamnetFormatError(
            "the graph does not start with YAMNet's front end (a window, two DFT products and a mel matrix); "
            "only the waveform-input release (yamnet.tflite from TF Hub / Kaggle) is supported"
        )
    window = next(v for v in windows[0].consts.values() if v.size == FRAME).reshape(-1)
    mel_bias = dense[2].const(2)
    constants = {
        "window": window,
        "dft_real": dense[0].const(1),
        "dft_imag": dense[1].const(1),
        "mel": dense[2].const(1),
        "mel_bias": mel_bias if mel_bias is not None else np.zeros(len(dense[2].const(1)), np.float32),
    }
    if any(v is None for v in constants.values()):
        raise YamnetFormatError("the front end's matrices are not constants")
    convs = [op for op in ops[first_conv:] if op.name in ("CONV_2D", "DEPTHWISE_CONV_2D")]
    kinds = [op.name for op in convs]
    if (
        not kinds
        or len(kinds) % 2 != 1
        or kinds[0] != "CONV_2D"
        or any(kinds[i] != ("DEPTHWISE_CONV_2D" if i % 2 else "CONV_2D") for i in range(1, len(kinds)))
    ):
        raise YamnetFormatError("the convolutions are not a stem and depthwise-separable pairs (MobileNetV1)")
    heads = [op for op in ops[first_conv:] if op.name == "FULLY_CONNECTED"]
    if len(heads) != 1 or heads[0].const(1) is None:
        raise YamnetFormatError("no single dense classifier after the convolutions")
    state: dict[str, np.ndarray] = {}
    blocks = []
    for index, op in enumerate(convs):
        if op.options.get("padding") != "SAME" or op.options.get("activation") != "RELU":
            raise YamnetFormatError(f"convolution {index} is not SAME-padded with a fused ReLU")
        weight = _conv_weight(op, op.name == "DEPTHWISE_CONV_2D")
        bias = op.const(2) if op.const(2) is not None else np.zeros(weight.shape[0], np.float32)
        state[f"layers.{index}.weight"], state[f"layers.{index}.bias"] = weight, bias
        if index % 2 == 1:  # the depthwise half: its stride and kernel; the pointwise half: the width
            width = int(convs[index + 1].const(1).shape[0])
            blocks.append([width, int(op.options["stride"][0]), int(weight.shape[-1])])
    stem = convs[0]
    layout = {
        "stem": [int(stem.const(1).shape[0]), stem.options["stride"][0], int(stem.const(1).shape[1])],
        "blocks": blocks,
        "classes": int(heads[0].const(1).shape[0]),
    }
    state["classifier.weight"] = heads[0].const(1)
    classifier_bias = heads[0].const(2)
    state["classifier.bias"] = classifier_bias if classifier_bias is not None else np.zeros(layout["classes"])
    return layout, constants, state


def load_tflite(path: Path) -> Yamnet:
    """YAMNet with the weights and front end of the TFLite file at `path` (errors: TFLiteFormatError,
    YamnetFormatError, for the caller to name the file)."""
    from ser.data.encoders.tflite_graph import read_graph

    layout, constants, state = parse_tflite(read_graph(path))
    model = Yamnet(layout, constants)
    try:
        model.net.load_state_dict({k: torch.as_tensor(np.asarray(v, np.float32)) for k, v in state.items()})
    except RuntimeError as exc:
        first = str(exc).splitlines()[0][:160]
        raise YamnetFormatError(f"the weights do not fit the layout ({first})") from None
    return model.eval()


def tflite_layout(path: Path) -> dict[str, Any]:
    """The architecture of the file at `path` (recorded with a checkpoint, to rebuild it untrained)."""
    from ser.data.encoders.tflite_graph import read_graph

    return parse_tflite(read_graph(path))[0]
