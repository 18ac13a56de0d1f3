"""How K models of one architecture train (the folds of a CV trial, or a seed ensemble): in the one fused
loop (ser.training.fused) with their networks fused or in lockstep, or one Lightning loop each, and a
line saying why where the asked-for path is not taken. Torch only, no Lightning: a CV sweep's driver asks
this before its trials start, and importing Lightning there cost it ~10 s of start-up on 2 cores."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from omegaconf import DictConfig

from ser.config import ConfigError
from ser.models.components.common import dropout_rates
from ser.training.devices import resolve_device

FUSED_STATE = "ser_fused"  # resume-state entry: written by a fused run, resumed only by one
FUSABLE = ("emotion_detector", "emotion_detector2", "sentan", "feature_mlp", "cnn_lstm")
NOT_FUSABLE = {"svm": "the SVM is a scikit-learn fit, not a torch network"}
# Where `trainer.fused=auto` fuses. On 2 CPU cores bench/fused.py measured fused K=6 no faster than the
# lockstep threads (README, Performance), so auto fuses on accelerators only.
AUTO_DEVICES = ("cuda", "mps")


def fused_refusal(cfg: DictConfig) -> str | None:
    """Why `cfg`'s models cannot train fused (one line), or None when they can."""
    family = str(cfg.model.name)
    if family in NOT_FUSABLE:
        return f"model '{family}' does not fuse: {NOT_FUSABLE[family]}"
    if family not in FUSABLE:
        return f"model '{family}' has no fused form"
    if family == "cnn_lstm" and int(cfg.model.lstm_layers) > 1 and dropout_rates(cfg.model)[0] > 0:
        return (
            "dropout between cnn_lstm's stacked LSTM layers draws from torch's global generator, so the "
            "models of one process cannot each draw what they would alone (model.lstm_layers=1 or "
            "model.dropout=none|classifier fuses)"
        )
    if str(cfg.model.get("fusion", "none")) != "none" or float(cfg.model.get("adversary_weight", 0)) > 0:
        return "model.fusion / model.adversary_weight (multi-view networks have no fused form)"
    if int(cfg.model.get("ensemble", 1)) > 1:
        return "model.ensemble > 1 (each fold's members train fused by seed instead, see model.ensemble)"
    if str(cfg.trainer.precision) != "32-true":
        return f"trainer.precision={cfg.trainer.precision} (the fused loop trains in 32-true only)"
    if cfg.trainer.compile:
        return "trainer.compile=true (a compiled network has no fused form)"
    devices = str(cfg.trainer.devices)
    if devices.isdigit() and int(devices) > 1:
        return f"trainer.devices={devices} (a fused run uses one device)"
    return None


@dataclass(frozen=True)
class Decision:
    """How K models train: one loop for all of them (ser.training.fused) or one Lightning loop each; in
    the one loop, their networks fused into one (a GPU) or run one after another in lockstep (a CPU)."""

    fused: bool
    fuse_network: bool = True
    note: str | None = None  # one line saying why the one loop is not used where it was asked for

    @property
    def mode(self) -> str:
        if not self.fused:
            return "per-model"
        return "fused" if self.fuse_network else "lockstep"


def decide(
    cfg: DictConfig,
    n_models: int,
    resume: Mapping[int, Path] | None = None,
    device_type: str | None = None,
) -> Decision:
    """How to train these `n_models` models (folds or seeds of `cfg`). `trainer.fused`: auto (networks
    fused on a GPU; on a CPU, where fusing measured slower, the same one loop runs them one after another),
    always (fused wherever the family fuses) or never (one Lightning loop per model). A resumed run goes
    on along the path that wrote its states. `device_type`: where the models will train, when not here
    (a sweep driver asking for its trials)."""
    mode = str(cfg.trainer.fused)
    device = device_type or resolve_device(cfg).type
    fuse_network = mode == "always" or device in AUTO_DEVICES
    if resume:
        written_fused = [is_fused_state(p) for p in resume.values()]
        if any(written_fused) != all(written_fused):
            raise ConfigError("invalid resume states: some were written by a fused run and some were not")
        if all(written_fused):
            note = "resuming the fused run that wrote these states" if mode == "never" else None
            return Decision(True, fuse_network, note)
        if mode == "always":
            return Decision(
                False, note="resuming states written by the per-model loop; training goes on there"
            )
        return Decision(False)
    if mode == "never" or n_models < 2:
        return Decision(False)
    refusal = fused_refusal(cfg)
    if refusal is not None:
        return Decision(
            False, note=f"not fused: {refusal}; its {n_models} models train one Lightning loop each"
        )
    return Decision(True, fuse_network)


def is_fused_state(path: str | Path) -> bool:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - a file the fused loop cannot read is not one it wrote
        return False
    return isinstance(state, dict) and FUSED_STATE in state
