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

from ser.config import RootConfig, merge_into

CKPT_KEY = "ser"


class CheckpointError(ValueError):
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


def read_checkpoint(path: str | Path) -> LoadedCheckpoint:
    """Read a checkpoint with `weights_only=True`; every failure is a CheckpointError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint file not found")
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{path}: not a readable weights-only checkpoint ({first})") from None
    if not isinstance(raw, dict) or CKPT_KEY not in raw or "state_dict" not in raw:
        raise CheckpointError(
            f"{path}: not a ser checkpoint (no '{CKPT_KEY}' entry); train it with `ser fit`"
        )
    info = raw[CKPT_KEY]
    try:
        cfg = merge_into(OmegaConf.structured(RootConfig), OmegaConf.create(info["config"]), str(path))
        return LoadedCheckpoint(
            path=path,
            cfg=cfg,
            labels=list(info["labels"]),
            kind=str(info["kind"]),
            waveform_mode=bool(info["waveform_mode"]),
            row_shape=tuple(int(v) for v in info["row_shape"]),
            info=info,
            state_dict=raw["state_dict"],
        )
    except KeyError as exc:
        raise CheckpointError(f"{path}: ser checkpoint lacks {exc}") from None


def restore_classifier(ckpt: LoadedCheckpoint, cfg: DictConfig | None = None):
    """Rebuild the EmotionClassifier the checkpoint was trained as, and load its weights strictly."""
    from ser.train import build_classifier

    cfg = cfg if cfg is not None else ckpt.cfg
    model, _ = build_classifier(cfg, ckpt.row_shape, ckpt.labels, ckpt.kind, ckpt.waveform_mode)
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
