"""The leaderboard's uncertainty: each trial's fold scores -> mean, sd and interval, the paired comparison
with the best trial, the tied group, and how many trials ASHA stopped within the noise of its survivors.

Fold scores are each fold's selection value (`metrics.json`: the validation metric at the epoch whose
checkpoint the fold kept); a trial without metrics.json (stopped by the scheduler, interrupted) takes
them from its reported per-fold curve. The statistics themselves live in `ser.sweep.stats`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ser.sweep import stats
from ser.sweep.schedulers import rung_score

STATS_COLUMNS = ["mean", "sd", "ci_low", "ci_high", "p_better", "tied", "n_folds"]
STATS_FILE = "stats.json"


def _metrics(row: dict[str, Any]) -> dict[str, Any]:
    path = Path(row.get("path") or "") / "metrics.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def fold_scores(row: dict[str, Any], metric: str, mode: str) -> tuple[list[float], list[dict[str, int]]]:
    """(selection value per fold, in fold order; the folds' split sizes) of one trial."""
    folds = sorted(_metrics(row).get("folds") or [], key=lambda f: f.get("fold", 0))
    scores = [f["selection"]["best"] for f in folds if (f.get("selection") or {}).get("best") is not None]
    if folds and len(scores) == len(folds):
        return [float(s) for s in scores], [dict(f.get("sizes") or {}) for f in folds]
    curves = fold_curves(row.get("history") or [], metric)
    pick = max if mode == "max" else min
    return [pick(c) for c in curves.values() if c], []


def fold_curves(history: Sequence[dict[str, Any]], metric: str) -> dict[int, list[float]]:
    """fold index -> its per-epoch `metric` as reported by a CV trial (`fold{k}/{metric}` keys)."""
    curves: dict[int, list[float]] = {}
    for h in history:
        for key, value in h.items():
            if key.startswith("fold") and key.endswith(f"/{metric}") and isinstance(value, (int, float)):
                index = key[len("fold") : -len(metric) - 1]
                if index.isdigit() and value == value:
                    curves.setdefault(int(index), []).append(float(value))
    return dict(sorted(curves.items()))


def _val_predictions(row: dict[str, Any]):
    from ser.report.predictions import read_predictions

    found = sorted(Path(row.get("path") or "").glob("fold_*/val_predictions.npz"))
    if len(found) != 1:
        return None
    try:
        return read_predictions(found[0])
    except (OSError, ValueError, KeyError):
        return None


def add_statistics(
    rows: list[dict[str, Any]], metric: str, mode: str, rope: float, level: float
) -> dict[str, Any]:
    """Fill each row's STATS_COLUMNS (rows are ranked, best first); return what was done and its cost."""
    start = time.perf_counter()
    sign = 1.0 if mode == "max" else -1.0
    ratio = 0.0
    for row in rows:
        scores, sizes = fold_scores(row, metric, mode)
        row["fold_scores"] = scores
        row["n_folds"] = len(scores)
        if sizes:
            ratio = max(ratio, stats.fold_size_ratio(sizes))
    ratio = ratio or 0.25  # 6 speaker folds: 2 validation speakers against 8 training speakers
    for row in rows:
        row["ratio"] = ratio
    reference = next((r for r in rows if r["fold_scores"]), None)
    methods = set()
    for row in rows:
        scores = row["fold_scores"]
        row.update(mean=None, sd=None, ci_low=None, ci_high=None, p_better=None, p_worse=None, tied=None)
        if len(scores) >= 2:
            interval = stats.t_interval(scores, level, ratio, bounds=(0.0, 1.0) if mode == "max" else None)
        elif len(scores) == 1 and (pred := _val_predictions(row)) is not None:
            interval = stats.speaker_bootstrap(pred.y, pred.pred, pred.speakers, level)
        elif scores:
            interval = stats.Interval(scores[0], None, None, None, 1, level, "one value")
        else:
            continue
        methods.add(interval.method)
        row.update(mean=interval.mean, sd=interval.sd, ci_low=interval.low, ci_high=interval.high)
        row["interval"] = interval.method
        if reference is None or row is reference:
            row["tied"] = True
            continue
        comparison = _compare(row, reference, sign, rope, ratio)
        if comparison is not None:
            row.update(p_better=comparison.p_above, p_worse=comparison.p_worse)
            row["tied"] = comparison.p_worse < level
    tied = [r["trial_id"] for r in rows if r.get("tied")]
    single = any(r["n_folds"] == 1 for r in rows)
    return {
        "reference": reference["trial_id"] if reference else None,
        "rope": rope,
        "level": level,
        "ratio": ratio,
        "intervals": sorted(methods),
        "comparison": "paired speaker bootstrap (single-fold trials)"
        if single
        else "correlated Bayesian t-test over shared folds (Corani & Benavoli 2015, baycomp)",
        "tied": tied,
        "note": SINGLE_FOLD_NOTE if single else "",
        "seconds": time.perf_counter() - start,
    }


SINGLE_FOLD_NOTE = (
    "single-fold trials are judged on one fold's validation speakers (2 on dev RAVDESS): their intervals "
    "resample those few speakers, so they say how little one fold can tell; use cv.folds for conclusions"
)


def _compare(row, reference, sign: float, rope: float, ratio: float) -> stats.Comparison | None:
    a, b = row["fold_scores"], reference["fold_scores"]
    if len(a) >= 2 and len(a) == len(b):
        return stats.compare([sign * v for v in a], [sign * v for v in b], rope, ratio)
    if len(a) == 1 and len(b) == 1:
        mine, theirs = _val_predictions(row), _val_predictions(reference)
        if mine is None or theirs is None or list(mine.ids) != list(theirs.ids):
            return None
        comparison = stats.paired_speaker_bootstrap(mine.y, mine.pred, theirs.pred, mine.speakers, rope)
        return comparison if sign > 0 else None
    return None


def rung_noise(
    rows: Sequence[dict[str, Any]],
    milestones: Sequence[int],
    metric: str,
    mode: str,
    rung_metric: str,
    alpha: float,
    rope: float,
    level: float,
    ratio: float = 0.25,
) -> list[dict[str, Any]]:
    """Per ASHA rung: the trials it stopped there, the survivors, and how many stopped trials were not
    distinguishable (fold by fold, at the rung, by the rung metric) from the weakest survivor."""
    sign = 1.0 if mode == "max" else -1.0

    def at_rung(row, m: int) -> list[float]:
        curves = fold_curves((row.get("history") or [])[:m], metric)
        values = [rung_score(c, rung_metric, mode, alpha) for c in curves.values() if len(c) >= m]
        return [v for v in values if v is not None]

    out = []
    for m in milestones:
        stopped = [r for r in rows if r.get("status") == "stopped" and r.get("epochs") == m]
        survivors = [r for r in rows if (r.get("epochs") or 0) > m]
        scored = [(r, at_rung(r, m)) for r in survivors]
        scored = [(r, s) for r, s in scored if len(s) >= 2]
        entry = {"rung": m, "stopped": len(stopped), "survivors": len(survivors), "within_noise": None}
        if scored and stopped:
            weakest = min(scored, key=lambda item: sign * sum(item[1]) / len(item[1]))[1]
            within = 0
            for r in stopped:
                mine = at_rung(r, m)
                if len(mine) == len(weakest):
                    c = stats.compare([sign * v for v in mine], [sign * v for v in weakest], rope, ratio)
                    within += c.p_worse < level
            entry["within_noise"] = within
        out.append(entry)
    return out


def _pm(mean: Any, low: Any, high: Any) -> str:
    if mean is None:
        return ""
    if low is None or high is None:
        return f"{mean:.3f}"
    return f"{mean:.3f} [{low:.3f}, {high:.3f}]"


def conclusion_lines(summary: dict[str, Any], plan: Any = None) -> list[str]:
    """Plain-words lines under the leaderboard (from a summary or a stats.json payload)."""
    comparison = summary.get("statistics") or summary.get("comparison") or {}
    best = summary.get("best")
    best_id = best.get("trial_id") if isinstance(best, dict) else best
    lines = []
    if comparison.get("reference"):
        tied = comparison.get("tied") or []
        level = comparison.get("level", 0.95)
        lines.append(
            f"tied with #1 ({comparison['reference']}): {len(tied)} trial(s), #1 included, not worse than it "
            f"by more than "
            f"{comparison.get('rope', 0):.3f} with probability {level:.0%} ({comparison.get('comparison')})"
        )
        if comparison.get("note"):
            lines.append(f"[yellow]note:[/] {comparison['note']}")
    if best_id:
        lines.append(f"best trial {best_id}: chosen by {summary.get('chosen_by')}")
    confirmation = summary.get("confirmation")
    if confirmation:
        changed = "changed" if confirmation.get("order_changed") else "kept"
        lines.append(
            f"confirmation: {confirmation.get('runs')} run(s) ({confirmation['top_k']} configs x "
            f"{confirmation['seeds']} new seeds), {confirmation.get('seconds', 0):.0f} s; the search "
            f"order was {changed}"
        )
        for e in confirmation.get("trials", []):
            lines.append(
                f"  {e['trial_id']}: search #{e['search_rank']} {e.get('search_mean') or 0:.3f} -> "
                f"confirmation #{e.get('confirm_rank', '-')} "
                f"{_pm(e.get('confirm_mean'), e.get('confirm_low'), e.get('confirm_high'))}"
            )
    return lines
