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
from tests.helpers.wandb_files import find_runs, read_run

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
    """A sweep file of the tiny trial; a `fixed` section adds to (or overrides) TINY_FIXED."""
    body = {"name": "t", **sections, "fixed": {**TINY_FIXED, **sections.get("fixed", {})}}
    path.write_text(yaml.safe_dump(body))
    return path


# ----------------------------------------------------------------------------------------- spec
@pytest.mark.parametrize(
    ("section", "key"),
    [
        ({"space": {"model.dpth": {"choice": [1, 2]}}}, "model.dpth"),
        ({"space": {"model.depth": {"choise": [1, 2]}}}, "choise"),
        ({"space": {"model.depth": {"choice": ["deep"]}}}, "model.depth"),
        ({"space": {"optim.lr": {"loguniform": [0.0, 1.0]}}}, "optim.lr"),
        ({"sheduler": {"name": "asha"}}, "sheduler"),
        ({"fixed": {"trainer.max_epoch": 3}}, "trainer.max_epoch"),
        ({"scheduler": {"name": "hyperband"}}, "scheduler.name"),
        # values the schema's types accept but `ser fit` would refuse: refused at load, not in a trial
        ({"space": {"model.depth": {"choice": [1, 0]}}}, "model.depth"),
        ({"space": {"optim.lr": {"choice": [0.001, -1]}}}, "optim.lr"),
        ({"space": {"model.dropout": {"choice": ["none", "bogus"]}}}, "model.dropout"),
        ({"space": {"optim.ema_decay": {"uniform": [0.5, 1.5]}}}, "optim.ema_decay"),
        ({"fixed": {"data.batch_size": 0}}, "data.batch_size"),
        ({"num_samples": 0}, "num_samples"),
        ({"scheduler": {"name": "asha", "max_t": 0}}, "scheduler.max_t"),
        ({"scheduler": {"name": "asha", "max_t": 4, "grace_period": 5}}, "scheduler.grace_period"),
        ({"resources": {"cpu": 0}}, "resources.cpu"),
        ({"metric": "val/uarr"}, "metric"),
        ({"metric": "val/loss", "mode": "max"}, "mode"),
    ],
)
def test_typos_bad_spaces_and_impossible_values_name_the_key(tmp_path: Path, section: dict, key: str) -> None:
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_sweep(write_sweep(tmp_path / "s.yaml", **{"space": {"optim.lr": {"choice": [0.01]}}, **section}))


def test_the_sweep_metric_is_every_trials_selection_metric(tmp_path: Path) -> None:
    plan = load_sweep(
        write_sweep(
            tmp_path / "m.yaml", metric="val/loss", mode="min", space={"optim.lr": {"choice": [0.01]}}
        )
    )
    assert plan.base.trainer.monitor == "val/loss"


def test_asha_rungs_lie_before_the_last_epoch_and_the_last_epoch_is_never_stopped() -> None:
    from types import SimpleNamespace

    from omegaconf import OmegaConf
    from ray.tune.schedulers import TrialScheduler

    from ser.config import SweepConfig
    from ser.sweep.schedulers import asha_milestones, build_scheduler, scheduler_milestones

    sweep = OmegaConf.merge(
        OmegaConf.structured(SweepConfig),
        {"scheduler": {"name": "asha", "max_t": 8, "grace_period": 2, "reduction_factor": 2}},
    )
    scheduler = build_scheduler(sweep)
    assert scheduler_milestones(scheduler) == asha_milestones(2, 2, 8) == [2, 4]  # Ray's own rule has 8 too
    scheduler.set_search_properties("val/uar", "max")
    trials = [SimpleNamespace(trial_id=f"t{i}") for i in range(3)]
    for trial in trials:
        scheduler.on_trial_add(None, trial)
    for epoch in range(1, 9):
        for i, trial in enumerate(trials):
            result = {"training_iteration": epoch, "val/uar": 0.1 * (i + 1)}
            action = scheduler.on_trial_result(None, trial, result)
            if epoch == 8:  # the last epoch: the trial ends by itself and scores its test split
                assert action == TrialScheduler.CONTINUE
    assert asha_milestones(4, 2, 30) == [4, 8, 16] and asha_milestones(10, 2, 30) == [10, 20]


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
    from ser.cli.sweep import main

    assert main([str(ROOT / "sweeps" / "cnn_depth.yaml")]) == 2
    err = capsys.readouterr().err
    assert "data.root" in err and "synthetic" in err


# ---------------------------------------------------------------------------------------- runs


@pytest.mark.slow
def test_smoke_sweep_asha_stops_and_failures_are_recorded(tiny_env, ray_session, tmp_path: Path) -> None:
    from ser.sweep.run import report_sweep, run_sweep

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
    assert not result["interrupted"]
    out = Path(result["dir"])
    board = (out / "leaderboard.csv").read_text()
    with (out / "leaderboard.csv").open() as handle:
        rows = {float(r["optim.lr"]): r for r in csv.DictReader(handle)}
    good, frozen, diverged = rows[0.01], rows[0.0], rows[1.0e30]
    assert good["status"] == "completed" and int(good["epochs"]) == 3
    assert frozen["status"] == "stopped" and int(frozen["epochs"]) == 2
    assert diverged["status"] == "error" and "loss became" in diverged["error"]
    assert good["rank"] == "1"
    # ranked by the selection metric only: no trial's test score on the leaderboard by default
    assert not any("test" in column for column in rows[0.01])
    # a completed trial always has its test score, in the ser fit schema
    trial_metrics = json.loads((Path(result["rows"][0]["path"]) / "metrics.json").read_text())
    assert trial_metrics["status"] == "completed" and trial_metrics["summary"]["test/uar"]["n"] == 1
    # the per-epoch training state handed to Tune is kept outside the trial folders Ray copies to storage
    # in the background (a state file deleted mid-copy failed the trial's next report)
    assert not [p for r in result["rows"] for p in Path(r["path"]).glob("ser-trial-*")]
    # the best config runs with `ser fit --config`, and the best checkpoint is there
    best = load_config([out / "best_config.yaml"])
    assert best.optim.lr == pytest.approx(0.01) and best.trainer.max_epochs == 3
    assert (out / "best" / "checkpoint.ckpt").stat().st_size > 0
    # ... with its test predictions, so `ser report SWEEP_DIR` has the best trial's speakers and embeddings
    from ser.report.html import write_report

    assert (out / "best" / "fold_0" / "predictions.npz").is_file()
    assert "<h2>Embeddings</h2>" in write_report(out).read_text()
    for plot in ("parallel_coordinates.png", "asha_rungs.png", "metric_vs_optim.lr.png", "best/curves.png"):
        assert (out / plot).stat().st_size > 0, plot
    # trials/<id>.json: each trial's 1-based curves, searched values, differences from the base, config
    trials = [json.loads(p.read_text()) for p in (out / "trials").glob("*.json")]
    by_lr = {t["searched"]["optim.lr"]: t for t in trials}
    assert set(by_lr) == {0.01, 0.0, 1.0e30}
    record = by_lr[0.01]
    assert [h["epoch"] for h in record["history"]] == [1, 2, 3] and record["status"] == "completed"
    assert record["best_epoch"] == int(good["best_epoch"]) and {"train/loss", "val/uar"} <= set(
        record["history"][0]
    )
    assert {"key": "optim.lr", "base": plan.base.optim.lr, "value": 0.01} in record["changes"]
    assert "trainer.progress_bar" not in {c["key"] for c in record["changes"]}
    assert "lr: 0.01" in record["config"]
    assert [h["epoch"] for h in by_lr[0.0]["history"]] == [1, 2]
    info = json.loads((out / "sweep.json").read_text())
    assert info["trials"] == 3 and info["epochs_total"] == 3 + 2 and info["rungs"] == [2]
    # one offline W&B run per trial, logged live, with the trial's OWN resolved config (nested)
    runs = {read_run(p)["config"].get("optim", {}).get("lr"): read_run(p) for p in find_runs(out)}
    trial_runs = {lr: r for lr, r in runs.items() if lr is not None}
    assert set(trial_runs) == {0.01, 0.0, 1.0e30}
    assert all(r["config"]["model"]["depth"] == 2 for r in trial_runs.values())
    assert [round(h["training_iteration"]) for h in trial_runs[0.01]["history"] if "val/uar" in h] == [
        1,
        2,
        3,
    ]
    assert any("train/loss" in h for h in trial_runs[0.01]["history"])
    assert (
        trial_runs[0.01]["summary"]["trial_state"] == "completed"
        and "test/uar" in trial_runs[0.01]["summary"]
    )
    assert trial_runs[0.0]["summary"]["trial_state"] == "stopped"
    assert trial_runs[1.0e30]["summary"]["trial_state"] == "failed"
    summary = [r for lr, r in runs.items() if lr is None]
    assert len(summary) == 1 and any(k.startswith("leaderboard") for k in summary[0]["summary"])
    # `--report` rebuilds the same leaderboard from what is on disk; --show-test adds the marked column
    (out / "leaderboard.csv").unlink()
    report_sweep(plan)
    assert (out / "leaderboard.csv").read_text() == board
    report_sweep(plan, show_test=True)
    header = (out / "leaderboard.csv").read_text().splitlines()[0]
    assert "test/uar (not for choosing)" in header


@pytest.mark.slow
def test_cross_validation_per_trial_reports_the_fold_mean(tiny_env, ray_session, tmp_path: Path) -> None:
    from ser.sweep.run import run_sweep

    sweep_file = write_sweep(
        tmp_path / "cv.yaml",
        name="cv",
        space={"model.name": {"grid": ["emotion_detector", "svm"]}},
        scheduler={"name": "fifo", "max_t": 2},
        cv={"folds": 2},
        storage_path=str(tmp_path / "out"),
    )
    result = run_sweep(load_sweep(sweep_file))
    by_family = {row["model.name"]: row for row in result["rows"]}
    row = by_family["emotion_detector"]
    assert row["status"] == "completed" and row["epochs"] == 2
    last = row["history"][-1]
    assert last["val/uar"] == pytest.approx((last["fold0/val/uar"] + last["fold1/val/uar"]) / 2)
    assert "val/uar_sd" in last
    outcome = json.loads((Path(row["path"]) / "metrics.json").read_text())
    assert [f["fold"] for f in outcome["folds"]] == [0, 1]
    # the SVM reports its validation UA to Tune like any trial, so a family sweep can rank it
    svm = by_family["svm"]
    assert svm["status"] == "completed" and svm["epochs"] == 1 and svm["best"] is not None
    # one W&B run per trial (not per fold)
    assert len([p for p in find_runs(Path(row["path"]))]) == 1


@pytest.mark.slow
def test_resources_no_node_has_fail_at_once(tiny_env, ray_session, tmp_path: Path) -> None:
    from ser.sweep.run import run_sweep

    sweep_file = write_sweep(
        tmp_path / "big.yaml",
        name="big",
        space={"optim.lr": {"choice": [0.01]}},
        resources={"cpu": 4096},
        storage_path=str(tmp_path / "out"),
    )
    started = time.monotonic()
    with pytest.raises(ConfigError, match="resources.*4096 CPU"):
        run_sweep(load_sweep(sweep_file))
    assert time.monotonic() - started < 120


def _sweep_process(sweep_file: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "RAY_worker_niceness": "0"}
    # a sweep started from a shell has its own W&B service: wandb leaves this process's service address in
    # WANDB_SERVICE once an earlier test used W&B, and a child that is killed -9 would leave its runs "in
    # use" in this process's service (the resumed sweep then cannot reopen them)
    env.pop("WANDB_SERVICE", None)
    return subprocess.Popen(
        [sys.executable, "-m", "ser.sweep", str(sweep_file), *extra],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
        start_new_session=True,
        text=True,
    )


def _curves(exp: Path) -> dict[str, list[float]]:
    """Per trial (by its kernel size): every fold's per-epoch val/uar, val/loss and train/loss, flat."""
    curves = {}
    for metrics_file in exp.glob("run_trial_*/metrics.json"):
        metrics = json.loads(metrics_file.read_text())
        config = load_config([metrics_file.parent / "config.yaml"])
        curves[str(config.model.kernel_size)] = [
            h[key]
            for fold in metrics["folds"]
            for h in fold["history"]
            for key in ("val/uar", "val/loss", "train/loss")
        ]
    return curves


def _wait_for_epochs(exp: Path, epochs: int, trials: int = 1, timeout: float = 300) -> None:
    """Until `trials` trials have reported at least `epochs` epochs (their progress.csv rows)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        reported = [len(p.read_text().strip().splitlines()) - 1 for p in exp.glob("run_trial_*/progress.csv")]
        if sum(n >= epochs for n in reported) >= trials:
            return
        time.sleep(0.02)  # a tiny trial's epoch takes a fraction of a second: see it while it runs
    raise AssertionError(f"{trials} trial(s) did not reach {epochs} epochs in {timeout} s")


def _kill_session(sid: int) -> None:
    """kill -9 every process of the sweep's session at once, as a job scheduler or a crash would. Not
    `os.killpg`: Ray puts its workers in process groups of their own, and a trial worker outlives its
    killed driver by seconds, still training and writing into the trial's folder."""

    def members() -> list[int]:
        pids = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue  # gone meanwhile
            if int(fields[3]) == sid and fields[0] != "Z":
                pids.append(int(stat.parent.name))
        return pids

    for _ in range(20):  # a process forked meanwhile is caught on the next pass
        pids = members()
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.05)
    raise AssertionError(f"processes of session {sid} survived kill -9: {members()}")


def _board(exp: Path) -> list[dict[str, str]]:
    with (exp / "leaderboard.csv").open() as handle:
        return list(csv.DictReader(handle))


@pytest.mark.slow
def test_resume_continues_trials_where_they_stopped(tiny_env, ray_session, tmp_path: Path) -> None:
    """Interrupted mid-trial, by Ctrl-C (exit 130, says how to resume) and then by kill -9 of the whole
    process group, `--resume` continues each unfinished trial from its last epoch (weights, optimizer,
    weight average, random generators): every trial's per-epoch curve equals the uninterrupted run's.
    The board lists every trial at every stage; the resumed sweep prints and logs what an uninterrupted
    one does (trial lines, W&B runs finished with their test metrics and state, one summary run).

    Work kept small: 2 trials x 2 folds x 4 epochs (an interruption seen at epoch 1 lands mid-trial);
    the reference (both trials at once) and the last resume run in this process's Ray session, only the
    two interrupted runs start their own (they must be killable)."""
    from io import StringIO

    from rich.console import Console

    from ser.sweep.run import run_sweep

    sections = dict(
        space={"model.kernel_size": {"grid": [3, 5]}},
        fixed={"model.dropout": "both", "data.augment.specaugment_p": 0.5, "optim.ema_decay": 0.5},
        scheduler={"name": "fifo", "max_t": 4},
        cv={"folds": 2},
        max_concurrent_trials=1,
        wandb={"enabled": True, "mode": "offline"},
        storage_path=str(tmp_path / "out"),
    )
    # the reference runs its 2 trials side by side (1 cpu each, so the same numbers as one at a time)
    reference = {**sections, "max_concurrent_trials": 2}
    run_sweep(load_sweep(write_sweep(tmp_path / "ref.yaml", name="ref", **reference)), wandb=False)
    sweep_file = write_sweep(tmp_path / "cut.yaml", name="cut", **sections)
    exp = tmp_path / "out" / "cut"
    proc = _sweep_process(sweep_file)
    _wait_for_epochs(exp, 1)  # the first trial is under way
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=300) == 130
    err = proc.stderr.read()
    assert "--resume" in err and "(1 interrupted, 1 pending" in err, err
    # every trial on the board with its values: the one cut short, and the one not created yet
    board = _board(exp)
    assert sorted(r["status"] for r in board) == ["interrupted", "pending"], board
    assert sorted(r["model.kernel_size"] for r in board) == ["3", "5"], board
    statuses = [json.loads(p.read_text())["status"] for p in exp.glob("run_trial_*/metrics.json")]
    assert "completed" not in statuses
    proc = _sweep_process(sweep_file, "--resume")
    _wait_for_epochs(exp, 1, trials=2)  # the second trial has started
    _kill_session(proc.pid)  # the harshest interruption: no chance to clean up
    proc.wait()
    console = StringIO()
    result = run_sweep(load_sweep(sweep_file), resume=True, console=Console(file=console, width=200))
    assert not result["interrupted"]
    assert len(list(exp.glob("run_trial_*"))) == 2  # no trial lost or run twice under a new name
    expected = _curves(tmp_path / "out" / "ref")
    got = _curves(exp)
    assert sorted(got) == sorted(expected) == ["3", "5"]
    for kernel, curve in expected.items():
        assert len(got[kernel]) == len(curve) == 2 * 4 * 3  # 2 folds x 4 epochs x 3 metrics, none lost
        assert got[kernel] == pytest.approx(curve, rel=1e-5), kernel
    assert [r["status"] for r in _board(exp)] == ["completed", "completed"]
    # the resumed sweep's console: the trial that ended before, then the one it continued
    first, second = sorted(r["trial_id"] for r in result["rows"])
    printed = console.getvalue()
    assert f"trial {first} completed (before the resume)" in printed, printed
    assert f"trial {second} started" in printed and f"trial {second} completed after 4 epoch(s)" in printed
    # W&B: each trial's last run segment (same run id across resumes) finished with test/uar, its
    # confusion matrix and state; one summary run for the sweep
    runs = find_runs(exp)
    summaries = [p for p in runs if p.parent.name.endswith("-summary")]
    assert len(summaries) == 1, runs
    for trial_id in (first, second):
        segments = sorted((p for p in runs if p.parent.name.endswith(trial_id)), key=lambda p: p.parent.name)
        last = read_run(segments[-1])["summary"]
        assert last["trial_state"] == "completed" and "test/uar" in last, (trial_id, last)
        assert any(k.startswith("test/confusion_matrix") for k in last), (trial_id, last)


def test_trials_share_prepared_data_only_when_its_settings_match(tiny_cfg_factory) -> None:
    from ser.sweep.trials import prepared_for, prepared_key

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
    assert prepared_for(apply_params(base, per_batch), shared) == "the base config's prepared data"
    own = prepared_for(apply_params(base, {"data.features.n_mels": 24}), shared)
    assert own.x.shape[-2] == 24  # prepared with the trial's own setting, not the shared array


def test_sweep_plot_axes_follow_the_search_space(tmp_path: Path) -> None:
    from ser.sweep.plots import _jitter, axis_kind, plot_metric_vs_keys, plot_parallel_coordinates

    assert axis_kind([1e-4, 3e-3], "loguniform") == "log"
    assert axis_kind([1, 2, 3], "choice") == "int"
    assert axis_kind([0.1, 0.25], "uniform") == "float"
    assert axis_kind(["grid", "stats"], "choice") == "category"
    import numpy as np

    xs = _jitter(np.array([1.0, 1.0, 2.0]), np.array([0.5, 0.5, 0.5]), 0.1)
    assert xs[0] != xs[1] and xs[2] == 2.0  # overlapping points spread, others untouched
    rows = [
        {"best": 0.4 + 0.05 * i, "stopped_early": i == 0, "optim.lr": lr, "model.time_pooling": pool}
        for i, (lr, pool) in enumerate([(1e-4, "grid"), (1e-3, "stats"), (1e-2, "stats")])
    ]
    samplers = {"optim.lr": "loguniform", "model.time_pooling": "choice"}
    paths = plot_metric_vs_keys(rows, ["optim.lr", "model.time_pooling"], "val/uar", samplers, tmp_path)
    assert [p.name for p in paths] == ["metric_vs_optim.lr.png", "metric_vs_model.time_pooling.png"]
    assert (
        plot_parallel_coordinates(rows, list(samplers), "val/uar", samplers, tmp_path / "pc.png")
        .stat()
        .st_size
    )
