"""Sweep conclusions on the synthetic corpus: tied groups, a clearly better config separated, the
confirmation stage, the smoothed rung metric at an ASHA rung, per-key effects and fANOVA importance."""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import yaml
from omegaconf import OmegaConf

from ser.sweep.conclusions import add_statistics
from ser.sweep.schedulers import RUNG_KEY, RungTracker, build_scheduler, rung_score
from tests.test_sweep import TINY_FIXED

TINY = {**TINY_FIXED, "data.synthetic.per_label": 6}  # the other sweep tests' tiny trial, fewer clips


def test_rung_scores_by_hand():
    curve = [0.30, 0.50, 0.40]
    assert rung_score(curve, "last") == 0.40
    assert rung_score(curve, "best") == 0.50
    assert rung_score(curve, "best", mode="min") == 0.30
    # ema with weight 0.5 on the newest: 0.30 -> 0.40 -> 0.40
    assert rung_score(curve, "ema", alpha=0.5) == pytest.approx(0.5 * 0.40 + 0.5 * (0.5 * 0.50 + 0.5 * 0.30))
    assert rung_score([], "ema") is None
    with pytest.raises(ValueError, match="rung metric"):
        rung_score(curve, "median")


def _asha(rung_metric: str):
    from ser.config import SweepConfig

    sweep = OmegaConf.merge(
        OmegaConf.structured(SweepConfig),
        {
            "rung_metric": rung_metric,
            "rung_ema": 0.5,
            "scheduler": {"name": "asha", "max_t": 8, "grace_period": 2, "reduction_factor": 2},
        },
    )
    return build_scheduler(sweep), OmegaConf.to_container(sweep)


@pytest.mark.parametrize(
    ("rung_metric", "curve", "kept"),
    [
        ("last", [0.70, 0.30], False),  # the dip at the rung decides
        ("ema", [0.70, 0.30], True),  # smoothed 0.50 is above the cut (0.45)
        ("ema", [0.35, 0.30], False),  # smoothed 0.325 is below it
    ],
)
def test_a_dipped_trial_at_an_asha_rung(rung_metric: str, curve: list[float], kept: bool):
    from ray.tune.schedulers import TrialScheduler

    scheduler, sweep = _asha(rung_metric)
    trials = {name: SimpleNamespace(trial_id=name) for name in ("a", "b", "dipped")}
    curves = {"a": [0.50, 0.50], "b": [0.40, 0.40], "dipped": curve}  # a and b reach the rung first
    for trial in trials.values():
        scheduler.on_trial_add(None, trial)
    actions = {}
    for name, trial in trials.items():
        tracker = RungTracker.from_sweep(sweep)
        for epoch, value in enumerate(curves[name], 1):
            result = tracker.add({"training_iteration": epoch, "val/uar": value})
            actions[name] = scheduler.on_trial_result(None, trial, result)
    assert result[RUNG_KEY] == pytest.approx(rung_score(curve, rung_metric, alpha=0.5))
    assert actions["dipped"] == (TrialScheduler.CONTINUE if kept else TrialScheduler.STOP)


# --------------------------------------------------------------------------- trained on synthetic speech
def _plan(tmp_path: Path, **sweep):
    from ser.sweep.spec import load_sweep

    body = {"name": "c", "fixed": dict(TINY), "cv": {"folds": 4}, "storage_path": str(tmp_path / "out")}
    body.update(sweep)
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(body))
    return load_sweep(tmp_path / "s.yaml")


def _train_trial(plan, data, out: Path, overrides: dict) -> dict:
    """One CV trial through the sweep's own fold trainer, without Ray: its row as the leaderboard has it."""
    from ser.sweep.trials import EpochReporter, train_folds_in_lockstep, trial_config, write_trial_metrics

    cfg = trial_config(overrides, OmegaConf.to_container(plan.base, resolve=True))
    folds = list(range(int(plan.sweep.cv.folds)))
    out.mkdir(parents=True)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(dir=out) as scratch:
        reporter = EpochReporter(folds, Path(scratch), report=lambda summary: None)
        results = train_folds_in_lockstep(cfg, data, folds, out, reporter, {})
    write_trial_metrics(out, cfg, data, results, start)
    means = [r["val/uar"] for r in reporter.reports]
    return {
        "trial_id": out.name,
        "status": "completed",
        "path": str(out),
        "best": max(means),
        "history": reporter.reports,
        "params": overrides,
        "epochs": len(means),
    }


@pytest.mark.slow
def test_identical_configs_tie_and_a_clearly_better_one_is_separated(tiny_env, tmp_path: Path):
    from ser.data.prepared import prepare_data

    six = {"data.synthetic.speakers": 6, "data.folds": 6, "optim.lr": 0.003}
    plan = _plan(tmp_path, fixed={**TINY, **six}, cv={"folds": 6})
    data = prepare_data(plan.base)
    rows = [
        _train_trial(plan, data, tmp_path / "a", {"trainer.max_epochs": 8, "trainer.seed": 0}),
        # the same config drawn twice, as a sweep draws it (the same trainer.seed)
        _train_trial(plan, data, tmp_path / "a_again", {"trainer.max_epochs": 8, "trainer.seed": 0}),
        _train_trial(plan, data, tmp_path / "one_epoch", {"trainer.max_epochs": 1, "trainer.seed": 0}),
    ]
    rows.sort(key=lambda r: -r["best"])
    summary = add_statistics(rows, "val/uar", "max", rope=0.01, level=0.95)
    by = {r["trial_id"]: r for r in rows}
    assert set(summary["tied"]) == {"a", "a_again"}
    assert by["one_epoch"]["tied"] is False and by["one_epoch"]["p_better"] < 0.05
    # each trial's mean is the mean of its folds' selection values (metrics.json), with its interval
    folds = json.loads((tmp_path / "a" / "metrics.json").read_text())["folds"]
    scores = [f["selection"]["best"] for f in folds]
    assert by["a"]["fold_scores"] == scores and by["a"]["mean"] == pytest.approx(np.mean(scores))
    assert by["a"]["ci_low"] < by["a"]["mean"] < by["a"]["ci_high"]
    assert summary["ratio"] == pytest.approx(
        np.mean([f["sizes"]["val"] / f["sizes"]["train"] for f in folds])
    )


@pytest.mark.slow
def test_confirmation_retrains_k_x_s_runs_and_picks_by_their_mean(tiny_env, tmp_path: Path):
    from ser.data.prepared import prepare_data
    from ser.sweep.confirm import run_confirmation
    from ser.sweep.results import board_statistics, write_best
    from ser.sweep.trials import prepared_key

    plan = _plan(
        tmp_path, confirm={"top_k": 2, "seeds": 2}, cv={"folds": 2}, scheduler={"name": "fifo", "max_t": 1}
    )
    out = Path(plan.sweep.storage_path) / "c"
    out.mkdir(parents=True)
    data = prepare_data(plan.base)
    shared = {prepared_key(plan.base): data}
    # three finished search trials, ranked (their search folders only need to exist for the board)
    rows = []
    for i, (depth, best) in enumerate([(1, 0.6), (2, 0.5), (3, 0.4)]):
        path = out / f"trial_{i}"
        path.mkdir()
        rows.append(
            {
                "trial_id": f"t{i}",
                "status": "completed",
                "best": best,
                "path": str(path),
                "params": {"model.depth": depth},
                "history": [],
                "epochs": 2,
                "model.depth": depth,
            }
        )
    conf = run_confirmation(plan, rows, shared, out)
    runs = sorted(out.glob("confirm/*/seed_*/metrics.json"))
    assert len(runs) == 2 * 2 and conf["runs_trained"] == 4
    assert {p.parent.parent.name for p in runs} == {"t0", "t1"}  # the top 2 only
    # the confirmation mean by hand: per config, the mean over its new seeds of the folds' mean selection
    by_hand = {}
    for trial in ("t0", "t1"):
        seeds = [json.loads(p.read_text()) for p in runs if p.parent.parent.name == trial]
        assert {s["protocol"]["folds"] if "folds" in s["protocol"] else 2 for s in seeds}
        by_hand[trial] = np.mean([np.mean([f["selection"]["best"] for f in s["folds"]]) for s in seeds])
    entries = {e["trial_id"]: e for e in conf["trials"]}
    for trial, value in by_hand.items():
        assert entries[trial]["confirm_mean"] == pytest.approx(value)
    assert entries["t0"]["search_best"] == 0.6 and entries["t1"]["search_best"] == 0.5
    assert conf["chosen"] == max(by_hand, key=by_hand.get)
    # new seeds: none of them is the search's seed
    seeds = {json.loads((p.parent / "metrics.json").read_text())["protocol"].get("seed") for p in runs}
    assert all(p.parent.name != "seed_0" for p in runs), seeds
    # the board and best_config.yaml say the best was chosen by confirmation
    board = board_statistics(rows, plan, out)
    assert board["best"]["trial_id"] == conf["chosen"] and board["chosen_by"].startswith("confirmation")
    write_best(plan, board["best"], out, board["chosen_by"])
    assert "chosen by confirmation" in (out / "best_config.yaml").read_text().splitlines()[0]
    # a second call (a resumed sweep) trains nothing again
    assert run_confirmation(plan, rows, shared, out)["runs_trained"] == 0


# --------------------------------------------------------------------------- effects and importance
def test_effects_per_value_average_fold_by_fold_and_importance_ranks_the_key_that_matters(tmp_path: Path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ser.sweep.effects import draw_effect, importance, key_effects, plot_effects

    rng = np.random.default_rng(0)
    rows = []
    for i, (depth, lr) in enumerate([(d, lr) for d in (2, 4, 8) for lr in (1e-4, 1e-3, 1e-2, 3e-3)]):
        folds = list(0.3 + 0.05 * depth + rng.normal(0, 0.005, 4))  # depth matters, lr does not
        rows.append(
            {
                "trial_id": f"t{i}",
                "status": "completed",
                "model.depth": depth,
                "optim.lr": lr,
                "fold_scores": folds,
                "mean": float(np.mean(folds)),
                "best": max(folds),
            }
        )
    samplers = {"model.depth": "choice", "optim.lr": "loguniform"}
    effects = key_effects(rows, ["model.depth", "optim.lr"], samplers, level=0.95, ratio=0.25)
    depth = effects["model.depth"]["points"]
    assert [p["value"] for p in depth] == [2, 4, 8] and [p["trials"] for p in depth] == [4, 4, 4]
    two = [r["fold_scores"] for r in rows if r["model.depth"] == 2]
    assert depth[0]["mean"] == pytest.approx(np.mean(two))
    assert depth[0]["low"] < depth[0]["mean"] < depth[0]["high"]
    weights = importance(
        rows, {"model.depth": ("choice", [2, 4, 8]), "optim.lr": ("loguniform", [1e-4, 1e-2])}, "max"
    )
    assert sum(weights.values()) == pytest.approx(1) and weights["model.depth"] > weights["optim.lr"]
    fig, axes = plt.subplots(1, 2)
    assert draw_effect(axes[0], "model.depth", effects["model.depth"], "val/uar") == "int"
    assert list(axes[0].get_xticks()) == [2, 4, 8]
    assert draw_effect(axes[1], "optim.lr", effects["optim.lr"], "val/uar") == "log"
    assert axes[1].get_xscale() == "log"
    plt.close(fig)
    assert [p.name for p in plot_effects(effects, "val/uar", tmp_path)] == [
        "effect_model.depth.png",
        "effect_optim.lr.png",
    ]


def test_sweep_report_cli_prints_the_conclusions_and_refuses_a_wrong_folder(tmp_path: Path, capsys) -> None:
    from ser.cli import main

    assert main(["sweep", "report", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("ser sweep report: error:") and "nowhere" in err[0]
    payload = {
        "metric": "val/uar",
        "best": "t1",
        "chosen_by": "confirmation (mean of top 2 configs x 1 new seeds)",
        "comparison": {
            "reference": "t0",
            "tied": ["t0", "t1"],
            "rope": 0.01,
            "level": 0.95,
            "comparison": "correlated Bayesian t-test",
        },
        "effects": {
            "model.depth": {
                "sampler": "grid",
                "grouped": True,
                "points": [{"value": 3, "trials": 2, "mean": 0.55, "low": 0.5, "high": 0.6}],
            }
        },
        "importance": {"model.depth": 1.0},
        "rung_noise": [{"rung": 4, "stopped": 2, "survivors": 1, "within_noise": 1}],
        "rung_metric": "ema",
    }
    (tmp_path / "stats.json").write_text(json.dumps(payload))
    assert main(["sweep", "report", str(tmp_path), "--no-rebuild"]) == 0
    out = capsys.readouterr().out
    assert "tied with #1 (t0): 2 trial(s)" in out and "chosen by confirmation" in out
    assert "0.500 - 0.600" in out and "fANOVA" in out and "within noise" in out
