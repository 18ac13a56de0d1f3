"""Loading `ser` checkpoints safely: weights only, no arbitrary unpickling of untrusted files.

A checkpoint written by `ser fit` carries, under the `ser` key, the resolved config and the data facts
(labels, feature kind, row shape) as plain types, so the whole pipeline (frontend, normaliser, network) is
rebuilt from code and only tensors are read from the file.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from ser.config import ConfigError, RootConfig, merge_into, validate
from ser.config.errors import UserError
from ser.models import CKPT_KEY

# what a checkpoint's rows are
KINDS = ("logmel", "mfcc", "handcrafted", "egemaps", "gemaps", "compare", "embeddings", "waveform")


class CheckpointError(UserError, ValueError):
    """The checkpoint is missing, unreadable, or not a `ser` checkpoint of this model."""


@dataclass
class LoadedCheckpoint:
    path: Path
    cfg: DictConfig
    labels: list[str]
    kind: str
    waveform_mode: bool
    row_shape: tuple[int, ...]
    info: dict[str, Any]
    state_dict: dict[str, torch.Tensor]
    epochs: int = 0  # epochs trained when it was saved (the best checkpoint: up to its epoch); 0: unknown


def _first_line(exc: BaseException) -> str:
    """The first line of torch's message, without its advice to unpickle with weights_only=False (a
    checkpoint that needs that is not one `ser` wrote, and unpickling it could run arbitrary code)."""
    text = str(exc).strip()
    for line in text.splitlines():
        line = line.strip()
        if (
            line
            and "weights_only" not in line
            and not line.startswith(("(1)", "(2)", "Please", "WeightsUnpickler"))
        ):
            return line[:200]
    return type(exc).__name__


def _info_field(path: Path, info: dict[str, Any], key: str, check: Any, want: str) -> Any:
    if key not in info:
        raise CheckpointError(f"{path}: ser checkpoint lacks '{key}'")
    value = info[key]
    try:
        ok = check(value)
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise CheckpointError(f"{path}: checkpoint metadata '{key}' must be {want}, got {value!r}")
    return value


def saved_epochs(raw: dict[str, Any]) -> int:
    """Epochs trained when the checkpoint was saved: its per-epoch history (the History callback's
    `ser_history` entry), else Lightning's 0-based `epoch` + 1; 0 when it has neither."""
    history = raw.get("ser_history")
    if isinstance(history, list) and history:
        return len(history)
    epoch = raw.get("epoch")
    return int(epoch) + 1 if isinstance(epoch, int) and not isinstance(epoch, bool) and epoch >= 0 else 0


def read_checkpoint(path: str | Path) -> LoadedCheckpoint:
    """Read a checkpoint with `weights_only=True`; every failure is a CheckpointError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint file not found")
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, OSError, AttributeError) as exc:
        raise CheckpointError(f"{path}: not a readable ser checkpoint ({_first_line(exc)})") from None
    if not isinstance(raw, dict) or CKPT_KEY not in raw or not isinstance(raw.get("state_dict"), dict):
        raise CheckpointError(
            f"{path}: not a ser checkpoint (no '{CKPT_KEY}' entry); train it with `ser fit`"
        )
    info = raw[CKPT_KEY]
    if not isinstance(info, dict):
        raise CheckpointError(f"{path}: checkpoint metadata '{CKPT_KEY}' must be a mapping")
    labels = _info_field(
        path,
        info,
        "labels",
        lambda v: isinstance(v, list) and len(v) >= 2 and all(isinstance(x, str) for x in v),
        "a list of at least 2 label names",
    )
    twice = sorted({x for x in labels if labels.count(x) > 1})
    if twice:  # the head has one output per entry: a repeated name would merge two classes' probabilities
        raise CheckpointError(f"{path}: checkpoint metadata 'labels' names {', '.join(twice)} more than once")
    _check_finite(path, raw["state_dict"])
    kind = _info_field(path, info, "kind", lambda v: v in KINDS, " or ".join(KINDS))
    if kind in ("embeddings", "waveform"):
        _info_field(path, info, "encoder", _is_encoder_record, "the encoder's record (model_type, config)")
    row_shape = _info_field(
        path,
        info,
        "row_shape",
        lambda v: (
            isinstance(v, list)
            and v
            and all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in v)
        ),
        "a list of positive integers",
    )
    waveform_mode = _info_field(path, info, "waveform_mode", lambda v: isinstance(v, bool), "true or false")
    config = _info_field(path, info, "config", lambda v: isinstance(v, dict), "a mapping")
    try:
        cfg = merge_into(OmegaConf.structured(RootConfig), OmegaConf.create(config), str(path))
        validate(cfg)
    except ConfigError as exc:
        raise CheckpointError(f"{path}: the stored config is invalid: {exc}") from None
    return LoadedCheckpoint(
        path=path,
        cfg=cfg,
        labels=list(labels),
        kind=str(kind),
        waveform_mode=bool(waveform_mode),
        row_shape=tuple(int(d) for d in row_shape),
        info=info,
        epochs=saved_epochs(raw),
        state_dict=raw["state_dict"],
    )


def _check_finite(path: Path, state: dict[str, Any]) -> None:
    """Weights with NaN or inf give NaN probabilities for every input: refuse them when loading."""
    for key, value in state.items():
        if isinstance(value, torch.Tensor) and value.is_floating_point() and not _is_metric_state(key):
            if not bool(torch.isfinite(value).all()):
                raise CheckpointError(f"{path}: weight '{key}' holds NaN or inf; the checkpoint is damaged")


def _is_encoder_record(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and isinstance(value.get("model_type"), str)
        and all(isinstance(value.get(k), dict) for k in ("config", "preprocessor"))
    )


def check_same_encoder(ckpt: LoadedCheckpoint, encoder: dict[str, Any] | None) -> None:
    """A frozen-encoder head scores only the states of the encoder it was trained on."""
    trained = ckpt.info.get("encoder")
    if ckpt.kind == "embeddings" and trained and encoder and trained["identity"] != encoder["identity"]:
        raise CheckpointError(
            f"{ckpt.path}: its head was trained on the states of {trained['source']} "
            f"({trained['identity']}), but model.encoder={encoder['source']} is now {encoder['identity']}"
        )


def restore_classifier(ckpt: LoadedCheckpoint, cfg: DictConfig | None = None):
    """Rebuild the EmotionClassifier the checkpoint was trained as, and load its weights strictly. A
    fine-tuned encoder is rebuilt from the architecture recorded in the checkpoint and filled with the
    checkpoint's weights: its pretrained folder is not needed."""
    from ser.models.pipeline import build_classifier

    cfg = cfg if cfg is not None else ckpt.cfg
    encoder = ckpt.info.get("encoder")
    if encoder is not None:
        encoder = {**encoder, "pretrained": False}
    layout = None
    if ckpt.info.get("layout") is not None:
        from ser.data.views import Layout

        try:
            layout = Layout.from_record(ckpt.info["layout"])
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"{ckpt.path}: checkpoint metadata 'layout' is unreadable: {exc}") from None
    model, _ = build_classifier(
        cfg, ckpt.row_shape, ckpt.labels, ckpt.kind, ckpt.waveform_mode, encoder=encoder, layout=layout
    )
    state = {k: v for k, v in ckpt.state_dict.items() if not k.startswith("_metrics")}
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shape mismatches
        detail = str(exc).strip().splitlines()[-1].strip()
        raise CheckpointError(
            f"{ckpt.path}: weights do not fit model '{cfg.model.name}' ({detail})"
        ) from None
    missing = [k for k in missing if not _is_metric_state(k)]
    unexpected = [k for k in unexpected if not _is_metric_state(k)]
    if missing or unexpected:
        raise CheckpointError(
            f"{ckpt.path}: weights do not fit model '{cfg.model.name}' "
            f"(missing {missing[:3]}, unexpected {unexpected[:3]}); was it trained with another model config?"
        )
    model.eval()
    return model


def _is_metric_state(key: str) -> bool:
    """torchmetrics states and the running-best buffer are not needed to predict."""
    return "metrics" in key.split(".")[0] or key.endswith("uar_best")
