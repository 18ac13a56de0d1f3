"""Sweeps: spec validation, a smoke sweep (ASHA stop, failing trial, leaderboard, W&B files), CV, resume."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from ser.config import ConfigError, load_config
from ser.sweep.spec import GRID_POINT, apply_params, grid_points, load_sweep, to_tune_space
from ser.wandb_files import find_runs, read_run

ROOT = Path(__file__).resolve().parent.parent
TINY_FIXED = {
    "data.synthetic.speakers": 4,
    "data.synthetic.per_label": 8,
    "data.synthetic.labels": ["neutral", "happy", "sad", "angry"],
    "data.synthetic.duration": 1.0,
    "data.audio.duration": 1.0,
    "data.folds": 4,
    "data.batch_size": 16,
    "model.depth": 2,
    "model.channels": 8,
    "model.hidden": 32,
}


def write_sweep(path: Path, **sections) -> Path:
    body = {"name": "t", "fixed": dict(TINY_FIXED), **sections}
    body["fixed"].update(sections.get("fixed", {}))
    path.write_text(yaml.safe_dump(body))
    return path


# ----------------------------------------------------------------------------------------- spec
def test_typos_and_bad_spaces_name_the_key(tmp_path: Path) -> None:
    cases = [
        ({"space": {"model.dpth": {"choice": [1, 2]}}}, "model.dpth"),
        ({"space": {"model.depth": {"choise": [1, 2]}}}, "choise"),
        ({"space": {"model.depth": {"choice": ["deep"]}}}, "model.depth"),
        ({"space": {"optim.lr": {"loguniform": [0.0, 1.0]}}}, "optim.lr"),
        ({"sheduler": {"name": "asha"}}, "sheduler"),
        ({"fixed": {"trainer.max_epoch": 3}}, "trainer.max_epoch"),
        ({"scheduler": {"name": "hyperband"}}, "scheduler.name"),
    ]
    for i, (section, key) in enumerate(cases):
        with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
            load_sweep(write_sweep(tmp_path / f"s{i}.yaml", **section))


def test_conditional_space_applies_only_the_chosen_family(tmp_path: Path) -> None:
    space = {
        "model.name": {
            "choice": {
                "sentan": {"model.depth": {"choice": [1, 2]}},
                "cnn_lstm": {"model.lstm_hidden": {"choice": [16, 32]}},
            }
        }
    }
    plan = load_sweep(write_sweep(tmp_path / "fam.yaml", space=space))
    params = {
        "model.name": "sentan",
        "model.name=sentan::model.depth": 1,
        "model.name=cnn_lstm::model.lstm_hidden": 16,
    }
    cfg = apply_params(plan.base, params)
    assert cfg.model.name == "sentan" and cfg.model.depth == 1
    assert cfg.model.lstm_hidden == load_config().model.lstm_hidden  # not applied: other family


def test_grid_keys_become_one_shuffled_grid_of_points(tmp_path: Path) -> None:
    space = {
        "model.depth": {"grid": [1, 2, 3]},
        "model.kernel_size": {"grid": [3, 5]},
        "optim.lr": {"choice": [0.1]},
    }
    plan = load_sweep(write_sweep(tmp_path / "g.yaml", space=space))
    points = grid_points(plan.space, seed=0)
    assert sorted((p["model.depth"], p["model.kernel_size"]) for p in points) == [
        (d, k) for d in (1, 2, 3) for k in (3, 5)
    ]
    assert points == grid_points(plan.space, seed=0)  # a function of the seed
    orders = {tuple(tuple(p.values()) for p in grid_points(plan.space, seed)) for seed in range(5)}
    assert len(orders) > 1  # and not Ray's nested order every time
    tune_space = to_tune_space(plan.space, seed=0)
    assert set(tune_space) == {GRID_POINT, "optim.lr"}
    cfg = apply_params(plan.base, {GRID_POINT: points[0], "optim.lr": 0.1})
    assert (cfg.model.depth, cfg.model.kernel_size) == (
        points[0]["model.depth"],
        points[0]["model.kernel_size"],
    )


def test_shipped_sweep_files_load() -> None:
    files = sorted((ROOT / "sweeps").glob("*.yaml"))
    assert {f.stem for f in files} >= {
        "quickstart",
        "cnn_depth",
        "kernel",
        "dropout_placement",
        "l2",
        "sentan",
        "cnn_lstm",
        "optimizer_bayes",
        "model_family",
    }
    for path in files:
        plan = load_sweep(path, ["data.root=/nonexistent"])
        assert plan.space, path


def test_missing_corpus_root_is_a_clear_error(tiny_env, capsys: pytest.CaptureFixture) -> None:
    from ser.sweep.__main__ import main

    assert main([str(ROOT / "sweeps" / "cnn_depth.yaml")]) == 2
    err = capsys.readouterr().err
    assert "data.root" in err and "synthetic" in err


# ---------------------------------------------------------------------------------------- runs
@pytest.fixture(scope="module")
def ray_session():
    import ray

    yield
    if ray.is_initialized():
        ray.shutdown()


def test_smoke_sweep_asha_stops_and_failures_are_recorded(tiny_env, ray_session, tmp_path: Path) -> None:
    from ser.sweep.run import run_sweep

    space = {"optim.lr": {"grid": [0.01, 0.0, 1.0e30]}}
    # ASHA lets the first trial at a rung go on: pick the seed whose shuffled grid launches lr=0.01 first
    seed = next(
        s
        for s in range(50)
        if grid_points({"optim.lr": ("grid", [0.01, 0.0, 1e30])}, s)[0] == {"optim.lr": 0.01}
    )
    sweep_file = write_sweep(
        tmp_path / "smoke.yaml",
        name="smoke",
        space=space,
        seed=seed,
        scheduler={"name": "asha", "max_t": 3, "grace_period": 2, "reduction_factor": 2},
        max_concurrent_trials=1,
        storage_path=str(tmp_path / "out"),
    )
    plan = load_sweep(sweep_file)
    result = run_sweep(plan)
    out = Path(result["dir"])
    board = (out / "leaderboard.csv").read_text()
    with (out / "leaderboard.csv").open() as handle:
        rows = {float(r["optim.lr"]): r for r in csv.DictReader(handle)}
    good, frozen, diverged = rows[0.01], rows[0.0], rows[1.0e30]
    assert good["status"] == "completed" and int(good["epochs"]) == 3 and good["test/uar"]
    assert frozen["status"] == "stopped" and frozen["stopped_early"] == "yes" and int(frozen["epochs"]) == 2
    assert diverged["status"] == "error" and "loss became" in diverged["error"]
    assert good["rank"] == "1"
    # the best config runs with `ser fit --config`, and the best checkpoint is there
    best = load_config([out / "best_config.yaml"])
    assert best.optim.lr == pytest.approx(0.01) and best.trainer.max_epochs == 3
    assert (out / "best" / "checkpoint.ckpt").stat().st_size > 0
    for plot in ("parallel_coordinates.png", "asha_rungs.png", "metric_vs_optim.lr.png", "best/curves.png"):
        assert (out / plot).stat().st_size > 0, plot
    info = json.loads((out / "sweep.json").read_text())
    assert info["trials"] == 3 and info["epochs_total"] == 3 + 2 + int(diverged["epochs"])
    # one offline W&B run per trial, with the per-epoch history on disk (stopped and failed ones too)
    runs = [read_run(p) for p in find_runs(out)]
    by_lr = {r["config"]["optim.lr"]: r for r in runs}
    assert len(runs) == 3
    assert [round(h["training_iteration"]) for h in by_lr[0.01]["history"]] == [1, 2, 3]
    assert len(by_lr[0.0]["history"]) == 2 and "val/uar" in by_lr[0.0]["history"][-1]
    assert by_lr[1.0e30]["summary"]["trial_state"] == "failed"
    # `--report` rebuilds the same leaderboard from what is on disk
    from ser.sweep.run import report_sweep

    (out / "leaderboard.csv").unlink()
    report_sweep(plan)
    assert (out / "leaderboard.csv").read_text() == board


def test_cross_validation_per_trial_reports_the_fold_mean(tiny_env, ray_session, tmp_path: Path) -> None:
    from ser.sweep.run import run_sweep

    sweep_file = write_sweep(
        tmp_path / "cv.yaml",
        name="cv",
        space={"model.kernel_size": {"choice": [3]}},
        scheduler={"name": "fifo", "max_t": 2},
        cv={"folds": 2},
        storage_path=str(tmp_path / "out"),
    )
    result = run_sweep(load_sweep(sweep_file))
    row = result["rows"][0]
    assert row["status"] == "completed" and row["epochs"] == 2
    last = row["history"][-1]
    assert last["val/uar"] == pytest.approx((last["fold0/val/uar"] + last["fold1/val/uar"]) / 2)
    assert "val/uar_sd" in last
    trial_dir = Path(row["path"])
    outcome = json.loads((trial_dir / "trial_result.json").read_text())
    assert [f["fold"] for f in outcome["folds"]] == [0, 1]
    # one W&B run per fold (grouped by the sweep) plus the trial's own run, each with its history
    runs = [read_run(p) for p in find_runs(trial_dir)]
    states = sorted(str(r["summary"].get("trial_state")) for r in runs)
    assert states == ["None", "None", "finished"]
    assert all(any("val/uar" in h for h in r["history"]) for r in runs)


def _sweep_process(sweep_file: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "ser.sweep", str(sweep_file), "--no-wandb", *extra],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        start_new_session=True,
    )


@pytest.mark.slow
def test_resume_after_kill_runs_only_the_remaining_trials(tiny_env, tmp_path: Path) -> None:
    sweep_file = write_sweep(
        tmp_path / "resume.yaml",
        name="resume",
        space={"model.kernel_size": {"grid": [3, 5, 7, 9]}},
        scheduler={"name": "fifo", "max_t": 2},
        max_concurrent_trials=1,
        storage_path=str(tmp_path / "out"),
    )
    exp = tmp_path / "out" / "resume"
    proc = _sweep_process(sweep_file)
    deadline = time.time() + 240
    while time.time() < deadline and len(list(exp.glob("run_trial_*/trial_result.json"))) < 1:
        time.sleep(0.5)
    time.sleep(3)  # let Tune save its experiment state after the first trial
    os.killpg(proc.pid, signal.SIGKILL)  # the harshest interruption: no chance to clean up
    proc.wait()
    finished_before = {p.parent.name: p.read_text() for p in exp.glob("run_trial_*/trial_result.json")}
    assert 1 <= len(finished_before) < 4
    resumed = _sweep_process(sweep_file, "--resume")
    assert resumed.wait(timeout=400) == 0
    trial_dirs = sorted(exp.glob("run_trial_*"))
    assert len(trial_dirs) == 4  # no trial was lost or run twice under a new name
    for name, text in finished_before.items():
        assert (exp / name / "trial_result.json").read_text() == text  # finished trials were not rerun
    with (exp / "leaderboard.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert sorted(int(r["model.kernel_size"]) for r in rows) == [3, 5, 7, 9]
    assert all(r["status"] == "completed" for r in rows)


def test_trials_share_prepared_data_only_when_its_settings_match(tiny_cfg_factory) -> None:
    from ser.sweep.trainable import _prepared_for, prepared_key

    base = tiny_cfg_factory()
    per_batch = {"data.features.deltas": 2, "data.batch_size": 8, "model.depth": 1, "optim.lr": 0.1}
    assert prepared_key(apply_params(base, per_batch)) == prepared_key(base)
    changes = [
        {"data.features.n_mels": 24},
        {"data.features.n_fft": 1024},
        {"data.features.normalize": "speaker"},
        {"data.audio.duration": 0.5},
        {"data.fold_seed": 3},
    ]
    keys = {prepared_key(apply_params(base, change)) for change in changes}
    assert len(keys) == len(changes) and prepared_key(base) not in keys
    shared = {prepared_key(base): "the base config's prepared data"}
    assert _prepared_for(apply_params(base, per_batch), shared) == "the base config's prepared data"
    own = _prepared_for(apply_params(base, {"data.features.n_mels": 24}), shared)
    assert own.x.shape[-2] == 24  # prepared with the trial's own setting, not the shared array
