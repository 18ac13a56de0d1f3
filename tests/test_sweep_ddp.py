"""A sweep trial trained by 2 DDP workers through Ray Train (gloo on CPU): reports, leaderboard, outcome."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from ser.config import ConfigError
from ser.sweep.spec import load_sweep
from tests.test_sweep import TINY_FIXED  # the same tiny synthetic trial as the other sweep tests


def write_sweep(path: Path, **sections) -> Path:
    path.write_text(yaml.safe_dump({"name": "ddp", "fixed": dict(TINY_FIXED), **sections}))
    return path


def test_workers_and_cv_together_is_a_clear_error(tmp_path: Path) -> None:
    path = write_sweep(
        tmp_path / "s.yaml",
        space={"optim.lr": {"choice": [0.01]}},
        resources={"workers": 2},
        cv={"folds": 2},
    )
    with pytest.raises(ConfigError, match=r"resources\.workers"):
        load_sweep(path)
    with pytest.raises(ConfigError, match=r"resources\.workers"):
        load_sweep(write_sweep(tmp_path / "z.yaml", resources={"workers": 0}))


@pytest.mark.slow
def test_two_worker_ddp_trial_reports_every_epoch(tiny_env, ray_session, tmp_path: Path) -> None:
    from ser.sweep.run import run_sweep

    sweep_file = write_sweep(
        tmp_path / "ddp.yaml",
        space={"optim.lr": {"choice": [0.01]}},
        scheduler={"name": "fifo", "max_t": 2},
        resources={"cpu": 1, "workers": 2},
        wandb={"enabled": False},
        storage_path=str(tmp_path / "out"),
    )
    result = run_sweep(load_sweep(sweep_file))
    row = result["rows"][0]
    assert row["status"] == "completed" and row["epochs"] == 2, row["error"]
    assert 0.0 <= row["last"] <= 1.0 and row["optim.lr"] == pytest.approx(0.01)
    assert [h["ddp/world_size"] for h in row["history"]] == [2, 2]
    outcome = json.loads((Path(row["path"]) / "metrics.json").read_text())
    assert outcome["status"] == "completed" and outcome["folds"][0]["world_size"] == 2
    fold = outcome["folds"][0]
    # the same fold trainer as `ser fit`: parameters, history and CSV logs are there too
    assert fold["parameters"] > 0 and len(fold["history"]) == 2 and fold["selection"]["best"] is not None
    assert (Path(row["path"]) / "fold_0" / "logs" / "metrics.csv").is_file()
    # torchmetrics synced across workers: the confusion matrix counts the whole test split
    assert sum(map(sum, fold["test"]["confusion"])) >= fold["sizes"]["test"]
    out = Path(result["dir"])
    assert (out / "leaderboard.csv").is_file() and (out / "best" / "checkpoint.ckpt").stat().st_size > 0
