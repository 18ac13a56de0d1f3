"""EfficientAT's MobileNetV3 (Schmid et al. 2023, AudioSet-trained `mn01_as` .. `mn40_as`) in PyTorch, from
its release `.pt` state dict, with its own log-mel front end.

The network is MobileNetV3-Large's 15 inverted-residual blocks (kernel, stride and activation per block as
in the paper's table, every stride-2 block halving both mel and time), squeeze-excitation over channels in
the blocks that have it (`conc_se_layers.0`, a ReLU bottleneck and a sigmoid gate), a 1x1 convolution to 6x
the last block's width, a global mean (the embedding, 384-d at width 0.4) and a two-layer MLP head (527
AudioSet logits). Every width comes from the file's tensor shapes, so any width multiplier loads; the module
names mirror the release's keys so the state dict loads strictly.

Front end (EfficientAT's preprocessing, eval mode): 32 kHz audio, pre-emphasis y[n] = x[n+1] - 0.97 x[n], a
1024-point STFT (centred, reflect-padded) with an 800-sample symmetric Hann window every 320 samples (10 ms),
power, 128 Kaldi mel bands over 0-15 kHz, log(x + 1e-5), then (x + 4.5) / 5.

Shapes: waveforms [B, samples] -> mel [B, 128, frames] -> embeddings over time [B, C, frames / 32] (their
mean is the release's pooled embedding) / logits [B, 527].
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import torch
from torch import nn

SAMPLE_RATE = 32000
N_FFT, WIN, HOP, N_MELS, F_MIN, F_MAX = 1024, 800, 320, 128, 0.0, 15000.0
PREEMPHASIS, LOG_OFFSET, SHIFT, SCALE = 0.97, 1e-5, 4.5, 5.0
BN_EPS = 0.001
# MobileNetV3-Large, per block: (stride, hard-swish activation); kernels and widths come from the file
BLOCKS = (
    (1, False), (2, False), (1, False), (2, False), (1, False), (1, False), (2, True), (1, True),
    (1, True), (1, True), (1, True), (1, True), (2, True), (1, True), (1, True),
)  # fmt: skip
WIDTHS = (0.1, 0.2, 0.4, 0.5, 1.0, 2.0, 3.0, 4.0)  # the release's mn01 .. mn40


class EfficientATFormatError(ValueError):
    """The state dict is not an EfficientAT MobileNetV3 with an MLP head (the caller names the file)."""


def kaldi_mel_banks(n_mels: int, n_fft: int, rate: int, f_min: float, f_max: float) -> np.ndarray:
    """[n_mels, n_fft // 2 + 1] triangles in Kaldi's mel scale (1127 ln(1 + f / 700)), the Nyquist bin 0."""
    mel = lambda f: 1127.0 * np.log1p(np.asarray(f, dtype=np.float64) / 700.0)  # noqa: E731
    low, high = mel(f_min), mel(f_max)
    delta = (high - low) / (n_mels + 1)
    edges = low + delta * np.arange(n_mels + 2)
    left, center, right = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    bins = mel(rate / n_fft * np.arange(n_fft // 2))[None, :]
    banks = np.maximum(0.0, np.minimum((bins - left) / (center - left), (right - bins) / (right - center)))
    return np.pad(banks, ((0, 0), (0, 1))).astype(np.float32)


class EfficientATMel(nn.Module):
    """[B, samples] at 32 kHz -> normalised log-mel [B, 128, frames] (EfficientAT's eval-mode front end)."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("window", torch.hann_window(WIN, periodic=False), persistent=False)
        banks = kaldi_mel_banks(N_MELS, N_FFT, SAMPLE_RATE, F_MIN, F_MAX)
        self.register_buffer("mel", torch.as_tensor(banks), persistent=False)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        wave = wave.float()
        wave = wave[:, 1:] - PREEMPHASIS * wave[:, :-1]
        spec = torch.stft(
            wave, N_FFT, hop_length=HOP, win_length=WIN, window=self.window, center=True, return_complex=True
        )
        power = spec.real.square() + spec.imag.square()
        return (torch.log(self.mel @ power + LOG_OFFSET) + SHIFT) / SCALE


def conv_bn(cin: int, cout: int, kernel: int, stride: int, groups: int, act: type[nn.Module] | None):
    """conv (no bias) -> batch norm -> activation: keys `.0` and `.1` (the release's ConvNormActivation)."""
    layers = [
        nn.Conv2d(cin, cout, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout, eps=BN_EPS),
    ]
    return nn.Sequential(*layers, *([act()] if act is not None else []))


class ChannelSE(nn.Module):
    def __init__(self, channels: int, squeeze: int) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(channels, squeeze), nn.Linear(squeeze, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = torch.sigmoid(self.fc2(torch.relu(self.fc1(x.mean(dim=(2, 3))))))
        return x * scale[:, :, None, None]


class SEBlock(nn.Module):
    """The release's concurrent SE with one (channel) branch: its max over one branch is that branch."""

    def __init__(self, channels: int, squeeze: int) -> None:
        super().__init__()
        self.conc_se_layers = nn.ModuleList([ChannelSE(channels, squeeze)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conc_se_layers[0](x)


class InvertedResidual(nn.Module):
    def __init__(self, spec: dict[str, Any], stride: int, hard_swish: bool) -> None:
        super().__init__()
        act = nn.Hardswish if hard_swish else nn.ReLU
        cin, mid, out, kernel = spec["in"], spec["mid"], spec["out"], spec["kernel"]
        layers: list[nn.Module] = []
        if spec["expand"]:
            layers.append(conv_bn(cin, mid, 1, 1, 1, act))
        layers.append(conv_bn(mid, mid, kernel, stride, mid, act))
        if spec["se"]:
            layers.append(SEBlock(mid, spec["se"]))
        layers.append(conv_bn(mid, out, 1, 1, 1, None))
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.block(x)
        return y + x if self.residual else y


class EfficientATNet(nn.Module):
    """Mel [B, 128, T] -> (feature maps [B, C, F', T'], logits [B, classes]); `layout` from `read_layout`."""

    def __init__(self, layout: dict[str, Any]) -> None:
        super().__init__()
        blocks = layout["blocks"]
        layers: list[nn.Module] = [conv_bn(1, layout["stem"], 3, 2, 1, nn.Hardswish)]
        for spec, (stride, hard_swish) in zip(blocks, BLOCKS, strict=True):
            layers.append(InvertedResidual(spec, stride, hard_swish))
        layers.append(conv_bn(blocks[-1]["out"], layout["dim"], 1, 1, 1, nn.Hardswish))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(1),
            nn.Linear(layout["dim"], layout["hidden"]),
            nn.Hardswish(),
            nn.Dropout(0.2),
            nn.Linear(layout["hidden"], layout["classes"]),
        )
        self.dim = int(layout["dim"])

    def forward(self, mel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        maps = self.features(mel.unsqueeze(1))
        return maps, self.classifier(maps)


class EfficientAT(nn.Module):
    """Front end and network: waveforms [B, samples] -> embeddings over time [B, P, C] (forward: the mel
    axis averaged, P = time steps) or AudioSet probabilities [B, classes] (`scores`)."""

    sample_rate = SAMPLE_RATE

    def __init__(self, layout: dict[str, Any]) -> None:
        super().__init__()
        self.frontend = EfficientATMel()
        self.net = EfficientATNet(layout)
        self.dim = self.net.dim

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        maps, _ = self.net(self.frontend(wave))
        return maps.mean(dim=2).transpose(1, 2)

    def scores(self, wave: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.net(self.frontend(wave))[1])

    def stem_parameters(self):
        return self.net.features[0].parameters()


# ---- reading the state dict ---------------------------------------------------------------------------
BLOCK_KEY = re.compile(r"^features\.(\d+)\.block\.(\d+)\.")


def _shape(state: dict[str, Any], key: str) -> tuple[int, ...]:
    if key not in state:
        raise EfficientATFormatError(f"no tensor {key!r}")
    return tuple(int(d) for d in state[key].shape)


def read_layout(state: dict[str, Any]) -> dict[str, Any]:
    """Widths, kernels and SE sizes from the tensor shapes of an EfficientAT state dict."""
    if not any(k.startswith("features.") for k in state):
        raise EfficientATFormatError("no features.* tensors: not an EfficientAT MobileNetV3 state dict")
    indices = {int(m.group(1)) for k in state if (m := BLOCK_KEY.match(k))}
    if sorted(indices) != list(range(1, len(BLOCKS) + 1)):
        raise EfficientATFormatError(f"expected {len(BLOCKS)} inverted-residual blocks (features.1..15)")
    if any(".conc_se_layers.1." in k for k in state):
        raise EfficientATFormatError("squeeze-excitation over frequency or time is not supported")
    if "classifier.5.weight" not in state:
        raise EfficientATFormatError("no MLP head (classifier.2 / classifier.5): only head_type=mlp loads")
    stem = _shape(state, "features.0.0.weight")[0]
    blocks, cin = [], stem
    for i in range(1, len(BLOCKS) + 1):
        prefix = f"features.{i}.block."
        parts = sorted({int(m.group(2)) for k in state if (m := BLOCK_KEY.match(k)) and int(m.group(1)) == i})
        first = _shape(state, f"{prefix}0.0.weight")
        expand = first[1] != 1 or first[2] == 1
        depthwise = _shape(state, f"{prefix}{1 if expand else 0}.0.weight")
        se_key = f"{prefix}{2 if expand else 1}.conc_se_layers.0.fc1.weight"
        se = _shape(state, se_key)[0] if se_key in state else 0
        out = _shape(state, f"{prefix}{parts[-1]}.0.weight")[0]
        blocks.append(
            {"in": cin, "mid": depthwise[0], "out": out, "kernel": depthwise[2], "expand": expand, "se": se}
        )
        cin = out
    hidden, dim = _shape(state, "classifier.2.weight")
    return {
        "stem": stem,
        "blocks": blocks,
        "dim": dim,
        "hidden": hidden,
        "classes": _shape(state, "classifier.5.weight")[0],
    }


def width_name(layout: dict[str, Any]) -> str:
    """'mn04' etc. when the widths are a release width multiplier's, else 'custom'."""

    def divisible(v: float) -> int:  # MobileNet's rounding of widths to multiples of 8
        new = max(8, int(v + 4) // 8 * 8)
        return new + 8 if new < 0.9 * v else new

    for width in WIDTHS:
        if divisible(16 * width) == layout["stem"] and 6 * divisible(160 * width) == layout["dim"]:
            return f"mn{round(width * 10):02d}"
    return "custom"


def load_state_dict(state: dict[str, Any]) -> EfficientAT:
    """The network of `state`'s layout with its weights, loaded strictly (EfficientATFormatError if not)."""
    model = EfficientAT(read_layout(state))
    try:
        model.net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = " ".join(str(exc).split())[:200]
        raise EfficientATFormatError(f"the tensors do not fit the inferred layout ({first})") from None
    return model.eval()
