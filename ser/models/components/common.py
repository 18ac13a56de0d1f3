"""Pieces every model family shares: the knob error, knob checks, activations and the FC head.

Checks run at build time against the real input shape, so an impossible sweep point fails before any
data is loaded, with a message that names the `model.<key>` to change.
"""

from __future__ import annotations

from typing import Optional

from torch import nn

from ser.config import CHOICES, ConfigError, ModelConfig


def bind(key: str, **modules: type[nn.Module]) -> dict[str, type[nn.Module]]:
    """Name -> module class for the config key's allowed values (listed once, in CHOICES); an import-time
    error if they differ, so the schema and the code cannot drift apart."""
    if set(modules) != set(CHOICES[key]):
        raise ImportError(f"{key}: modules for {sorted(modules)} but the config allows {list(CHOICES[key])}")
    return modules


ACTIVATIONS = bind("model.activation", relu=nn.ReLU, elu=nn.ELU, gelu=nn.GELU, leaky_relu=nn.LeakyReLU)
POOLS = bind("model.pool", max=nn.MaxPool2d, avg=nn.AvgPool2d)
DROPOUT_PLACEMENTS = CHOICES["model.dropout"]


class ModelConfigError(ConfigError):
    """A model name or knob cannot be built; the message names the `model.<key>`."""


def fail(key: str, problem: str) -> None:
    raise ModelConfigError(f"invalid config key 'model.{key}': {problem}")


def make_activation(name: str) -> nn.Module:
    if name not in ACTIVATIONS:
        fail("activation", f"{name!r} is not one of {list(ACTIVATIONS)}")
    return ACTIVATIONS[name]()


def check_choice(key: str, value: str, allowed: tuple[str, ...] | list[str]) -> None:
    if value not in allowed:
        fail(key, f"{value!r} is not one of {list(allowed)}")


def check_range(key: str, value: int, low: int, high: Optional[int] = None, family: str = "") -> None:
    """Integer knob within [low, high]; `family` says whose limit it is."""
    too_high = high is not None and value > high
    if value < low or too_high:
        bound = f"between {low} and {high}" if high is not None else f">= {low}"
        who = f" for {family}" if family else ""
        fail(key, f"{value} must be {bound}{who}")


def dropout_rates(cfg: ModelConfig) -> tuple[float, float]:
    """(feature-extractor rate, classifier rate) after the placement knob; 0.0 where it places none."""
    check_choice("dropout", cfg.dropout, DROPOUT_PLACEMENTS)
    for key in ("conv_dropout", "classifier_dropout"):
        rate = getattr(cfg, key)
        if not 0.0 <= rate < 1.0:
            fail(key, f"{rate} is outside [0, 1)")
    conv = cfg.conv_dropout if cfg.dropout in ("conv", "both") else 0.0
    head = cfg.classifier_dropout if cfg.dropout in ("classifier", "both") else 0.0
    return conv, head


def spectrogram_shape(input_shape: tuple[int, ...], family: str) -> tuple[int, int, int]:
    """(channels, n_mels, frames) or a ModelConfigError saying the family needs a spectrogram."""
    if len(input_shape) != 3 or min(input_shape) < 1:
        raise ModelConfigError(
            f"model '{family}' takes spectrogram input (channels, n_mels, frames); got input_shape "
            f"{tuple(input_shape)}: check data.features.kind (a vector feature cannot feed a CNN)"
        )
    c, f, t = input_shape
    return int(c), int(f), int(t)


def kernel_hw(cfg: ModelConfig, height: int, width: Optional[int]) -> tuple[int, int]:
    """(kernel_size, kernel_width or kernel_size), checked against the input it first meets."""
    kh = cfg.kernel_size
    kw = cfg.kernel_width if cfg.kernel_width is not None else kh
    width_key = "kernel_width" if cfg.kernel_width is not None else "kernel_size"
    check_range("kernel_size", kh, 1)
    check_range(width_key, kw, 1)
    if kh > height:
        fail("kernel_size", f"kernel height {kh} is larger than the input height (n_mels) {height}")
    if width is not None and kw > width:
        fail(width_key, f"kernel width {kw} is larger than the input width (frames) {width}")
    return kh, kw


def channel_plan(cfg: ModelConfig, depth: int) -> list[int]:
    """Output channels per block: `channels * channel_growth**i`, capped at `max_channels`."""
    check_range("channels", cfg.channels, 1)
    check_range("max_channels", cfg.max_channels, 1)
    if cfg.channel_growth <= 0:
        fail("channel_growth", f"{cfg.channel_growth} must be > 0")
    return [max(1, min(cfg.max_channels, round(cfg.channels * cfg.channel_growth**i))) for i in range(depth)]


def make_head(
    in_features: int, n_classes: int, layers: int, hidden: int, activation: str, dropout: float
) -> nn.Sequential:
    """FC classifier: [Dropout] Linear, or [Dropout] Linear-act [Dropout] Linear when `layers` is 2.

    Dropout modules are present only when `dropout > 0`, so inspecting modules shows the placement.
    """
    check_range("classifier_layers", layers, 1, 2)
    check_range("hidden", hidden, 1)
    mods: list[nn.Module] = []
    width = in_features
    if layers == 2:
        if dropout > 0:
            mods.append(nn.Dropout(dropout))
        mods += [nn.Linear(width, hidden), make_activation(activation)]
        width = hidden
    if dropout > 0:
        mods.append(nn.Dropout(dropout))
    mods.append(nn.Linear(width, n_classes))
    return nn.Sequential(*mods)


def check_n_classes(n_classes: int) -> None:
    if n_classes < 2:
        raise ModelConfigError(f"a classifier needs at least 2 classes; got n_classes={n_classes}")
