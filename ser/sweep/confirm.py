"""The confirmation stage (`sweep.confirm: {top_k, seeds}`): the search's top K configs train again with S
new seeds each, on the same folds, through the trials' own fold trainer (`train_folds_in_lockstep`: the
folds fused into one model where the family allows, else in lockstep), and the best config is the one
with the best confirmation mean. The search's own run is left out of that mean: it is the draw that
won the search, so it is biased upwards (the winner's curse the stage exists to undo).

Runs land in `confirm/<trial_id>/seed_<seed>/metrics.json` (the `ser fit` schema); a finished run is not
trained again, so `--resume` continues an interrupted confirmation. `confirm/confirmation.json` holds the
search and confirmation scores side by side; the leaderboard and best_config.yaml read it.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ser.sweep import stats

CONFIRM_DIR = "confirm"
CONFIRM_FILE = "confirmation.json"
SEED_STRIDE = 10_000  # confirmation seed s of a config: its trial seed + 10000 s (ensembles use +1000 m)


def confirmation_seeds(seed: int, count: int) -> list[int]:
    return [int(seed) + SEED_STRIDE * s for s in range(1, count + 1)]


def candidates(rows: Sequence[dict[str, Any]], top_k: int) -> list[dict[str, Any]]:
    """The top K trials that completed with a score (rows are ranked, best first)."""
    return [r for r in rows if r.get("status") == "completed" and r.get("best") is not None][:top_k]


def run_confirmation(plan, rows: Sequence[dict[str, Any]], shared: dict, out_dir: Path, console=None) -> dict:
    """Train top_k x seeds runs (skipping finished ones), write and return confirmation.json's content."""
    from omegaconf import OmegaConf

    from ser.sweep.trials import (
        EpochReporter,
        prepared_for,
        train_folds_in_lockstep,
        trial_config,
        trial_folds,
        write_trial_metrics,
    )
    from ser.training.result import read_metrics

    start = time.perf_counter()
    top_k, count = int(plan.sweep.confirm.top_k), int(plan.sweep.confirm.seeds)
    base = OmegaConf.to_container(plan.base, resolve=True)
    trained = 0
    for row in candidates(rows, top_k):
        cfg0 = trial_config(dict(row["params"]), base)
        for seed in confirmation_seeds(int(cfg0.trainer.seed), count):
            out = out_dir / CONFIRM_DIR / str(row["trial_id"]) / f"seed_{seed}"
            done = out / "metrics.json"
            if done.is_file() and read_metrics(done).get("status") == "completed":
                continue
            out.mkdir(parents=True, exist_ok=True)
            cfg = cfg0.copy()
            cfg.trainer.seed = seed
            data = prepared_for(cfg, shared)
            folds = trial_folds(cfg, data, int(plan.sweep.cv.folds))
            (out / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
            if console is not None:
                console.print(f"confirm: trial {row['trial_id']} seed {seed} ({len(folds)} fold(s))")
            run_start = time.perf_counter()
            execution: dict[str, Any] = {}
            with tempfile.TemporaryDirectory(prefix="ser-confirm-", dir=out) as scratch:
                reporter = EpochReporter(folds, Path(scratch), report=lambda summary: None)
                results = train_folds_in_lockstep(cfg, data, folds, out, reporter, {}, execution)
            write_trial_metrics(out, cfg, data, results, run_start, execution=execution)
            trained += 1
    summary = summarize_confirmation(plan, rows, out_dir, trained, time.perf_counter() - start)
    path = out_dir / CONFIRM_DIR / CONFIRM_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(summary, indent=2))
    return summary


def _seed_scores(run_dir: Path) -> list[float] | None:
    try:
        metrics = json.loads((run_dir / "metrics.json").read_text())
    except (OSError, ValueError):
        return None
    folds = sorted(metrics.get("folds") or [], key=lambda f: f.get("fold", 0))
    scores = [(f.get("selection") or {}).get("best") for f in folds]
    if metrics.get("status") != "completed" or not scores or None in scores:
        return None
    return [float(s) for s in scores]


def summarize_confirmation(plan, rows, out_dir: Path, trained: int, seconds: float) -> dict[str, Any]:
    """Search score and confirmation score of each confirmed trial, and the config chosen by the latter."""
    level, mode = float(plan.sweep.stats.level), str(plan.sweep.mode)
    top = candidates(rows, int(plan.sweep.confirm.top_k))
    ratio = next((r["ratio"] for r in rows if r.get("ratio")), 0.25)
    bounds = (0.0, 1.0) if mode == "max" else None  # UA, WA, F1 are fractions; a loss is not
    entries = []
    for rank, row in enumerate(top, 1):
        runs = sorted((out_dir / CONFIRM_DIR / str(row["trial_id"])).glob("seed_*"))
        per_seed = [s for s in (_seed_scores(r) for r in runs) if s is not None]
        entry: dict[str, Any] = {
            "trial_id": row["trial_id"],
            "search_rank": rank,
            "search_mean": row.get("mean") if row.get("mean") is not None else row.get("best"),
            "search_best": row.get("best"),
            "seeds": len(per_seed),
            "confirm_mean": None,
        }
        if per_seed and len({len(s) for s in per_seed}) == 1:
            folds = [sum(v) / len(v) for v in zip(*per_seed)]  # per fold, the mean over the new seeds
            interval = (
                stats.t_interval(folds, level, ratio, bounds=bounds)
                if len(folds) >= 2
                else stats.t_interval([s[0] for s in per_seed], level, bounds=bounds)
            )
            entry.update(
                confirm_mean=interval.mean,
                confirm_sd=interval.sd,
                confirm_low=interval.low,
                confirm_high=interval.high,
                confirm_fold_scores=folds,
                seed_means=[sum(s) / len(s) for s in per_seed],
            )
        entries.append(entry)
    confirmed = [e for e in entries if e["confirm_mean"] is not None]
    sign = 1.0 if mode == "max" else -1.0
    confirmed.sort(key=lambda e: -sign * e["confirm_mean"])
    for rank, e in enumerate(confirmed, 1):
        e["confirm_rank"] = rank
    chosen = confirmed[0]["trial_id"] if confirmed else None
    return {
        "top_k": int(plan.sweep.confirm.top_k),
        "seeds": int(plan.sweep.confirm.seeds),
        "runs_trained": trained,
        "runs": sum(e["seeds"] for e in entries),
        "seconds": seconds,
        "trials": entries,
        "chosen": chosen,
        "search_best": top[0]["trial_id"] if top else None,
        "order_changed": [e["trial_id"] for e in confirmed]
        != [e["trial_id"] for e in entries if e["confirm_mean"] is not None],
    }


def read_confirmation(out_dir: Path) -> dict[str, Any] | None:
    path = Path(out_dir) / CONFIRM_DIR / CONFIRM_FILE
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None
