"""What each searched key did: the mean selection metric per value with its interval, and an importance
table (fANOVA, optuna's `FanovaImportanceEvaluator`, over the completed trials).

Per value of a choice/grid key the trials with that value are averaged fold by fold (every CV trial of a
sweep trains the same speaker folds), and the interval is the Nadeau-Bengio corrected t-interval over
the folds (`ser.sweep.stats.t_interval`), so one trial per value still gets an honest interval. Keys with
many numeric values (uniform, loguniform) are drawn trial by trial, each with its own interval.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ser.sweep import stats
from ser.sweep.spec import COND_SEP

CONTINUOUS = ("uniform", "loguniform", "quniform", "randint")


def _score(row: dict[str, Any]) -> float | None:
    value = row.get("mean") if row.get("mean") is not None else row.get("best")
    return None if value is None else float(value)


def key_effects(
    rows: Sequence[dict[str, Any]], keys: Sequence[str], samplers: dict[str, str], level: float, ratio: float
) -> dict[str, dict[str, Any]]:
    """key -> {"sampler", "grouped", "points": [{value, trials, mean, low, high}]}."""
    out: dict[str, dict[str, Any]] = {}
    for key in keys:
        scored = [r for r in rows if r.get(key) not in (None, "") and _score(r) is not None]
        sampler = samplers.get(key, "choice")
        values = {str(r[key]) for r in scored}
        grouped = sampler not in CONTINUOUS or len(values) <= len(scored) / 2  # values that repeat
        points = []
        if grouped:
            for value in _ordered({str(r[key]): r[key] for r in scored}):
                members = [r for r in scored if str(r[key]) == str(value)]
                points.append(_group_point(value, members, level, ratio))
        else:
            for r in scored:
                points.append(
                    {
                        "value": r[key],
                        "trials": 1,
                        "mean": _score(r),
                        "low": r.get("ci_low"),
                        "high": r.get("ci_high"),
                    }
                )
        out[key] = {"sampler": sampler, "grouped": grouped, "points": points}
    return out


def _ordered(values: dict[str, Any]) -> list[Any]:
    items = list(values.values())
    try:
        return sorted(items, key=float)
    except (TypeError, ValueError):
        return sorted(items, key=str)


def _group_point(value: Any, members: list[dict[str, Any]], level: float, ratio: float) -> dict[str, Any]:
    lengths = {len(r.get("fold_scores") or []) for r in members}
    if len(lengths) == 1 and lengths.pop() >= 2:  # fold by fold over the group's trials
        per_fold = np.mean([r["fold_scores"] for r in members], axis=0)
        interval = stats.t_interval(per_fold, level, ratio, bounds=_bounds(members))
    elif len(members) >= 2:  # single-fold trials: over the trials
        interval = stats.t_interval([_score(r) for r in members], level, bounds=_bounds(members))
    else:
        r = members[0]
        interval = stats.Interval(_score(r), r.get("sd"), r.get("ci_low"), r.get("ci_high"), 1, level, "")
    return {
        "value": value,
        "trials": len(members),
        "mean": interval.mean,
        "low": interval.low,
        "high": interval.high,
    }


def _bounds(members: list[dict[str, Any]]) -> tuple[float, float] | None:
    """(0, 1) when every score is a fraction (UA, WA, F1): intervals clipped to what the metric can take."""
    values = [v for r in members for v in (r.get("fold_scores") or [_score(r)]) if v is not None]
    return (0.0, 1.0) if values and all(0 <= v <= 1 for v in values) else None


def _distribution(sampler: str, args: Any):
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    if sampler in ("choice", "grid"):
        return CategoricalDistribution([_plain_choice(a) for a in args])
    if sampler == "loguniform":
        return FloatDistribution(float(args[0]), float(args[1]), log=True)
    if sampler == "randint":
        return IntDistribution(int(args[0]), int(args[1]) - 1)
    if sampler == "quniform":
        return FloatDistribution(float(args[0]), float(args[1]))
    return FloatDistribution(float(args[0]), float(args[1]))


def _plain_choice(value: Any) -> Any:
    return value if value is None or isinstance(value, (bool, int, float, str)) else str(value)


def importance(
    rows: Sequence[dict[str, Any]], space: dict[str, tuple[str, Any]], mode: str, seed: int = 0
) -> dict[str, float] | None:
    """fANOVA importance of the searched keys (fractions summing to 1) over the completed trials, or
    None when there is nothing to apportion (fewer than 3 scored trials or no key that varied)."""
    import optuna
    from optuna.importance import FanovaImportanceEvaluator, get_param_importances

    flat = {k.split(COND_SEP)[-1]: (s, a) for k, (s, a) in space.items() if COND_SEP not in k}
    trials = []
    for r in rows:
        score = _score(r)
        if score is None or r.get("status") != "completed" or not math.isfinite(score):
            continue
        params, dists = {}, {}
        for key, (sampler, args) in flat.items():
            if r.get(key) in (None, ""):
                continue
            dist = _distribution(sampler, args)
            value = _plain_choice(r[key]) if sampler in ("choice", "grid") else r[key]
            if sampler in ("choice", "grid") and value not in dist.choices:
                value = next((c for c in dist.choices if str(c) == str(value)), None)
                if value is None:
                    continue
            params[key], dists[key] = value, dist
        trials.append(optuna.trial.create_trial(params=params, distributions=dists, value=score))
    varied = [k for k in flat if len({str(t.params.get(k)) for t in trials}) > 1]
    if len(trials) < 3 or not varied:
        return None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize" if mode == "max" else "minimize")
    study.add_trials(trials)
    found = get_param_importances(study, evaluator=FanovaImportanceEvaluator(seed=seed), params=varied)
    return {k: float(v) for k, v in found.items()}


def draw_effect(ax, key: str, effect: dict[str, Any], metric: str) -> str:
    """One key's effect on `ax`; returns the axis kind (integer ticks, log scale or labelled categories)."""
    from ser.sweep.plots import axis_kind

    points = effect["points"]
    kind = axis_kind([p["value"] for p in points], effect["sampler"])
    if kind == "category":
        xs = np.arange(len(points), dtype=float)
    else:
        xs = np.array([float(p["value"]) for p in points])
    ys = np.array([p["mean"] for p in points], dtype=float)
    low = np.array([p["low"] if p["low"] is not None else p["mean"] for p in points], dtype=float)
    high = np.array([p["high"] if p["high"] is not None else p["mean"] for p in points], dtype=float)
    ax.errorbar(xs, ys, yerr=[ys - low, high - ys], fmt="o", capsize=4, color="C0")
    if effect["grouped"]:
        for x, y, p in zip(xs, ys, points):
            ax.annotate(f"{p['trials']}", (x, y), textcoords="offset points", xytext=(6, 4), fontsize=7)
    if kind == "category":
        ax.set_xticks(xs, [str(p["value"]) for p in points])
    elif kind == "log":
        ax.set_xscale("log")
    elif kind == "int":
        ax.set_xticks(sorted({int(x) for x in xs}))
    ax.set_xlabel(key)
    ax.set_ylabel(f"{metric} (mean over folds)")
    what = "its interval over folds" if effect["grouped"] else "each trial's interval"
    ax.set_title(f"{key}: mean and {what} (numbers: trials)", fontsize=9)
    ax.grid(alpha=0.3)
    return kind


def plot_effects(effects: dict[str, dict[str, Any]], metric: str, out_dir: Path) -> list[Path]:
    """effect_<key>.png per searched key (`draw_effect`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    for key, effect in effects.items():
        if not effect["points"]:
            continue
        fig, ax = plt.subplots(figsize=(5.5, 3.6))
        draw_effect(ax, key, effect, metric)
        fig.tight_layout()
        path = out_dir / f"effect_{key.replace('/', '_')}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths
