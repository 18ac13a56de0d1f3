"""Model families by name: `model.name: cnn_lstm` in YAML, and a sweep may vary the name.

Each entry says what the family eats (`input_kind`), so the data side can pick features once, and whether
it is a torch model (`is_torch`), so the training code branches once for the scikit-learn SVM baseline.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

from torch import nn

from ser.config import MODEL_INPUTS, ModelConfig
from ser.models.components.cnn_lstm import CnnLstm
from ser.models.components.common import ModelConfigError
from ser.models.components.emotion_detector import EmotionDetector
from ser.models.components.emotion_detector2 import EmotionDetector2
from ser.models.components.feature_mlp import FeatureMLP
from ser.models.components.sentan import SentAn

__all__ = [
    "MODELS",
    "ModelConfigError",
    "ModelSpec",
    "available_models",
    "build_model",
    "count_parameters",
    "input_kind",
]

Builder = Callable[..., nn.Module]  # (cfg, input_shape, n_classes, **family-specific inputs) -> network
INPUT_SHAPES = {
    "spectrogram": "(channels, n_mels, frames)",
    "vector": "(dim,)",
    "pretrained": "(layers, dim[, frames]) encoder states or (samples,) waveforms",
}
INPUT_RANKS = {"spectrogram": (3,), "vector": (1,), "pretrained": (1, 2, 3)}


def _build_ssl(cfg: ModelConfig, input_shape: tuple[int, ...], n_classes: int, **extra) -> nn.Module:
    """Imported on use: the pretrained-encoder family is an optional extra (transformers)."""
    from ser.models.ssl import build_ssl

    return build_ssl(cfg, input_shape, n_classes, **extra)


@dataclass(frozen=True)
class ModelSpec:
    """How to build one family and what it eats (`input_kind`, from the schema's MODEL_INPUTS, where the
    family names are listed). `builder` is None for non-torch models (the SVM)."""

    builder: Optional[Builder]
    input_kind: str  # spectrogram | vector | pretrained
    is_torch: bool = True
    summary: str = ""


_BUILDERS: dict[str, tuple[Optional[Builder], str]] = {
    "emotion_detector": (EmotionDetector, "Conv2D stack + FC head"),
    "emotion_detector2": (EmotionDetector2, "Conv2D+BN stack, global pool, 2-layer head"),
    "sentan": (SentAn, "1-3 conv layers + FC head"),
    "cnn_lstm": (CnnLstm, "frequency-pooling CNN + LSTM over time"),
    "feature_mlp": (FeatureMLP, "MLP (optional Conv1D) on handcrafted vector"),
    "svm": (None, "StandardScaler + SVC (ser.models.svm)"),
    "ssl": (_build_ssl, "pretrained speech encoder (transformers), frozen or fine-tuned, + layer mix head"),
}
if set(_BUILDERS) != set(MODEL_INPUTS):  # the names are listed once, in the config schema
    raise ImportError(f"model registry {sorted(_BUILDERS)} does not match the schema's MODEL_INPUTS")
MODELS: dict[str, ModelSpec] = {
    name: ModelSpec(builder, MODEL_INPUTS[name], builder is not None, summary)
    for name, (builder, summary) in _BUILDERS.items()
}


def available_models() -> list[str]:
    return sorted(MODELS)


def get_spec(name: str) -> ModelSpec:
    if name not in MODELS:
        raise ModelConfigError(
            f"invalid config key 'model.name': unknown model {name!r}; available: {available_models()}"
        )
    return MODELS[name]


def input_kind(name: str) -> str:
    """'spectrogram', 'vector' or 'pretrained': what the family `name` takes."""
    return get_spec(name).input_kind


MAX_PARAMETERS = 500_000_000  # 2 GB of float32 weights, ~8 GB to train with Adam: far above any SER head
SIZE_KEYS = ("channels", "max_channels", "channel_growth", "depth", "hidden", "lstm_hidden", "lstm_layers")


def check_size(spec: ModelSpec, cfg: ModelConfig, shape: tuple[int, ...], n_classes: int, **extra) -> None:
    """Count the parameters of the network built on the meta device (no memory), before it is built for
    real: a config that is valid key by key can still multiply to terabytes (channels x depth x hidden)."""
    import torch

    if spec.builder is None or spec.input_kind == "pretrained":
        return  # the encoder's size is the checkpoint's, not the config's
    with torch.device("meta"):
        probe = spec.builder(cfg, shape, n_classes, **extra)
    count = sum(p.numel() for p in probe.parameters()) * max(1, int(getattr(cfg, "ensemble", 1)))
    if count > MAX_PARAMETERS:
        sizes = ", ".join(f"model.{k}={getattr(cfg, k)}" for k in SIZE_KEYS if hasattr(cfg, k))
        raise ModelConfigError(
            f"invalid config key 'model': {cfg.name} with {sizes} has {count:.3g} parameters "
            f"({count * 4 / 1e9:.3g} GB of float32 weights); at most {MAX_PARAMETERS:.0e} are built: lower "
            "one of those sizes"
        )


def build_model(cfg: ModelConfig, input_shape: tuple[int, ...], n_classes: int, **extra) -> nn.Module:
    """Build `cfg.name` for inputs of `input_shape` (no batch dim): (C, n_mels, frames) or (dim,); `extra`
    goes to families that take more (ssl: the `encoder` it fine-tunes)."""
    spec = get_spec(cfg.name)
    if not spec.is_torch or spec.builder is None:
        raise ModelConfigError(
            f"model {cfg.name!r} is not a torch model; fit it with ser.models.svm.fit_svm "
            "(check MODELS[name].is_torch before build_model)"
        )
    shape = tuple(int(d) for d in input_shape)
    if len(shape) not in INPUT_RANKS[spec.input_kind]:
        raise ModelConfigError(
            f"invalid config key 'model.name': {cfg.name!r} takes {spec.input_kind} input "
            f"{INPUT_SHAPES[spec.input_kind]}, got input_shape {shape}; check data.features.kind"
        )
    check_size(spec, cfg, shape, n_classes, **extra)
    if int(getattr(cfg, "ensemble", 1)) > 1:  # members trained one by one, then held together
        from ser.models.ensemble import EnsembleNet

        return EnsembleNet([spec.builder(cfg, shape, n_classes, **extra) for _ in range(int(cfg.ensemble))])
    return spec.builder(cfg, shape, n_classes, **extra)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable (requires_grad) parameter values."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
