"""trials/<id>.json for the fake sweep folder of the web UI tests, written by the sweep's own writer."""

from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf

from ser.sweep.trial_files import trial_record, write_trial_files

BASE = {"model": {"depth": 4, "pool": "mean"}, "optim": {"lr": 0.001}, "trainer": {"max_epochs": 8}}
TRIALS = {  # trial id -> (status, depth, lr, epochs, val/uar rising by, best epoch)
    "t0001": ("completed", 4, 0.001, 8, 0.04, 7),
    "t0002": ("completed", 6, 0.0003, 8, 0.05, 8),
    "t0003": ("stopped", 2, 0.01, 2, 0.02, 2),
}


def write_fake_trials(root: Path) -> Path:
    """Three trials with 8, 8 and 2 epochs of train/val loss and UA; t0002 also changes model.pool."""
    base = OmegaConf.create(BASE)
    records = []
    for trial_id, (status, depth, lr, epochs, slope, best_epoch) in TRIALS.items():
        history = [
            {
                "training_iteration": e,
                "train/loss": 2.0 - slope * 3 * e,
                "val/loss": 2.1 - slope * 2 * e,
                "train/uar": 0.2 + slope * e,
                "val/uar": 0.2 + slope * e * 0.8,
                "val/uar_sd": 0.01,
            }
            for e in range(1, epochs + 1)
        ]
        cfg = OmegaConf.merge(base, {"model": {"depth": depth}, "optim": {"lr": lr}})
        if trial_id == "t0002":
            cfg.model.pool = "attention"
        row = {
            "trial_id": trial_id,
            "status": status,
            "best": max(h["val/uar"] for h in history),
            "best_epoch": best_epoch,
            "epochs": epochs,
            "history": history,
            "model.depth": depth,
            "optim.lr": lr,
        }
        fixed = {"trainer.max_epochs": 8}
        records.append(trial_record(row, ["model.depth", "optim.lr"], "val/uar", "max", base, cfg, fixed))
    return write_trial_files(records, root)
