"""A finished (or interrupted) sweep -> leaderboard.csv, best_config.yaml, best checkpoint, plots, table.

Everything is read from what Tune and the trials wrote on disk (the ResultGrid and each trial's
`trial_result.json`), so the same function summarises a sweep after `--resume` or from another machine.
"""

from __future__ import annotations

import csv
import json
import math
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from omegaconf import DictConfig, OmegaConf  # noqa: E402

from ser.report import plot_confusion, plot_curves  # noqa: E402
from ser.sweep.spec import SweepPlan, apply_params, trial_overrides  # noqa: E402

FIXED_COLUMNS = (
    "trial_id",
    "status",
    "last",
    "best",
    "test/uar",
    "epochs",
    "stopped_early",
    "wall_seconds",
    "error",
)


def _finite(value: Any) -> float | None:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def collect_rows(result_grid, plan: SweepPlan) -> list[dict[str, Any]]:
    """One row per trial: searched values, metric at its last epoch and its best, epochs, status."""
    metric, mode = plan.sweep.metric, plan.sweep.mode
    max_t = int(plan.sweep.scheduler.max_t)
    rows = []
    for result in result_grid:
        trial_dir = Path(result.path)
        history = result.metrics_dataframe
        values = [] if history is None or metric not in history else [v for v in history[metric].tolist()]
        values = [v for v in (_finite(x) for x in values) if v is not None]
        epochs = len(values)
        best = (max(values) if mode == "max" else min(values)) if values else None
        outcome_file = trial_dir / "trial_result.json"
        outcome = json.loads(outcome_file.read_text()) if outcome_file.is_file() else {}
        error = result.error
        metrics = result.metrics or {}
        status = _status(error, outcome, epochs, max_t, bool(metrics.get("done")))
        params = trial_overrides(plan.base, _trial_config(result))
        row = {
            "trial_id": metrics.get("trial_id") or trial_dir.name,
            "status": status,
            "last": values[-1] if values else None,
            "best": best,
            "test/uar": (outcome.get("summary") or {}).get("test/uar", {}).get("mean"),
            "epochs": epochs,
            "stopped_early": status == "stopped" and epochs < max_t,
            "wall_seconds": _finite(metrics.get("time_total_s")),
            "error": _error_line(error, outcome),
            "path": str(trial_dir),
            "history": history.to_dict("records") if history is not None else [],
            **params,
        }
        rows.append(row)
    reverse = mode == "max"
    rows.sort(key=lambda r: (r["best"] is None, -(r["best"] or 0) if reverse else (r["best"] or 0)))
    return rows


def _trial_config(result) -> dict[str, Any]:
    """The trial's sampled params; from params.json when the results on disk lack them (failed trials)."""
    if result.config:
        return dict(result.config)
    params = Path(result.path) / "params.json"
    return json.loads(params.read_text()) if params.is_file() else {}


def _status(error: Any, outcome: dict[str, Any], epochs: int, max_t: int, done: bool) -> str:
    """completed | stopped (by the scheduler) | error | interrupted (resume it) | pending (never ran)."""
    if error:
        return "error"
    if outcome.get("status") == "completed" or epochs >= max_t:
        return "completed"
    if epochs == 0:
        return "pending"
    return "stopped" if done else "interrupted"


def _error_line(error: BaseException | None, outcome: dict[str, Any]) -> str:
    if outcome.get("error"):
        return str(outcome["error"])
    if error is None:
        return ""
    text = str(error).strip().splitlines()
    for line in reversed(text):  # Ray wraps the trial's exception: the last line names it
        if line.strip():
            return line.strip()[:300]
    return type(error).__name__


def write_leaderboard(rows: Sequence[dict[str, Any]], keys: Sequence[str], metric: str, path: Path) -> Path:
    header = [
        "rank",
        "trial_id",
        "status",
        f"{metric} (last)",
        f"{metric} (best)",
        "test/uar",
        "epochs",
        "stopped_early",
        "wall_seconds",
        *keys,
        "error",
    ]
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for rank, r in enumerate(rows, 1):
            writer.writerow(
                [
                    rank,
                    r["trial_id"],
                    r["status"],
                    _fmt(r["last"]),
                    _fmt(r["best"]),
                    _fmt(r["test/uar"]),
                    r["epochs"],
                    "yes" if r["stopped_early"] else "no",
                    _fmt(r["wall_seconds"], 1),
                    *[r.get(k, "") for k in keys],
                    r["error"],
                ]
            )
    return path


def _fmt(value: Any, digits: int = 4) -> str:
    return "" if value is None else f"{float(value):.{digits}f}"


def _numeric_axis(values: list[Any]) -> tuple[np.ndarray, list[str] | None]:
    """Numbers stay numbers; anything else becomes category indices with tick labels."""
    try:
        return np.array([float(v) for v in values]), None
    except (TypeError, ValueError):
        cats = sorted({str(v) for v in values})
        return np.array([cats.index(str(v)) for v in values], dtype=float), cats


def plot_parallel_coordinates(rows, keys, metric, path: Path) -> Path | None:
    rows = [r for r in rows if r["best"] is not None]
    if not rows or not keys:
        return None
    columns = [*keys, metric]
    data, ticks = [], []
    for key in columns:
        values = [r.get(key) if key != metric else r["best"] for r in rows]
        values = [v if v is not None else "n/a" for v in values]
        axis, cats = _numeric_axis(values)
        lo, hi = float(np.min(axis)), float(np.max(axis))
        data.append((axis - lo) / (hi - lo) if hi > lo else np.full_like(axis, 0.5))
        ticks.append((lo, hi, cats))
    scores = np.array([r["best"] for r in rows])
    cmap = plt.get_cmap("viridis")
    norm = plt.Normalize(scores.min(), scores.max() if scores.max() > scores.min() else scores.min() + 1e-9)
    fig, ax = plt.subplots(figsize=(2.0 + 1.8 * len(columns), 4.5))
    xs = np.arange(len(columns))
    for i in np.argsort(scores):
        ax.plot(xs, [d[i] for d in data], color=cmap(norm(scores[i])), alpha=0.85, lw=1.6)
    for x, (lo, hi, cats) in zip(xs, ticks):
        ax.axvline(x, color="grey", lw=0.8)
        label_lo, label_hi = (cats[0], cats[-1]) if cats else (f"{lo:.3g}", f"{hi:.3g}")
        ax.text(x, -0.06, label_lo, ha="center", va="top", fontsize=8)
        ax.text(x, 1.06, label_hi, ha="center", va="bottom", fontsize=8)
    ax.set_xticks(xs, columns, rotation=20)
    ax.set_yticks([])
    ax.set_ylim(-0.15, 1.15)
    fig.colorbar(plt.cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax, label=f"best {metric}")
    ax.set_title("parallel coordinates (colour = best metric)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_metric_vs_keys(rows, keys, metric, out_dir: Path) -> list[Path]:
    paths = []
    rows = [r for r in rows if r["best"] is not None]
    for key in keys:
        present = [r for r in rows if key in r]
        if not present:
            continue
        axis, cats = _numeric_axis([r[key] for r in present])
        scores = [r["best"] for r in present]
        fig, ax = plt.subplots(figsize=(5, 3.6))
        ax.scatter(axis, scores, c=["C3" if r["stopped_early"] else "C0" for r in present], alpha=0.8)
        if cats:
            ax.set_xticks(range(len(cats)), cats, rotation=20)
        elif np.all(axis > 0) and axis.max() / max(axis.min(), 1e-30) > 50:
            ax.set_xscale("log")
        ax.set_xlabel(key)
        ax.set_ylabel(f"best {metric}")
        ax.set_title(f"{metric} vs {key} (red: stopped early)", fontsize=9)
        ax.grid(alpha=0.3)
        fig.tight_layout()
        path = out_dir / f"metric_vs_{key.replace('/', '_')}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths


def rung_milestones(grace: int, factor: float, max_t: int) -> list[int]:
    milestones, t = [], float(grace)
    while t < max_t:
        milestones.append(int(round(t)))
        t *= factor
    return milestones


def plot_rungs(rows, metric, plan: SweepPlan, path: Path) -> Path | None:
    """Metric per epoch of every trial, with the scheduler's rungs: where ASHA cut trials."""
    if not any(r["history"] for r in rows):
        return None
    sched = plan.sweep.scheduler
    fig, (ax_curve, ax_bar) = plt.subplots(1, 2, figsize=(11, 4), gridspec_kw={"width_ratios": [3, 2]})
    for r in rows:
        points = [(h.get("training_iteration"), _finite(h.get(metric))) for h in r["history"]]
        points = [(x, y) for x, y in points if x is not None and y is not None]
        if points:
            xs, ys = zip(*points)
            colour = "C3" if r["stopped_early"] else ("C7" if r["status"] == "error" else "C0")
            ax_curve.plot(xs, ys, "o-", color=colour, alpha=0.6, lw=1.2, ms=3)
    if sched.name == "asha":
        for m in rung_milestones(int(sched.grace_period), float(sched.reduction_factor), int(sched.max_t)):
            ax_curve.axvline(m, color="grey", ls=":", lw=1)
    ax_curve.set_xlabel("epoch")
    ax_curve.set_ylabel(metric)
    ax_curve.set_title(f"{metric} per epoch ({sched.name}; dotted: rungs; red: stopped)", fontsize=9)
    ax_curve.grid(alpha=0.3)
    epochs = [r["epochs"] for r in rows]
    ax_bar.hist(epochs, bins=np.arange(-0.5, int(sched.max_t) + 1.5), color="C0", rwidth=0.9)
    ax_bar.set_xlabel("epochs trained")
    ax_bar.set_ylabel("trials")
    ax_bar.set_title(f"epochs per trial: {sum(epochs)} in total", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def best_config(plan: SweepPlan, params: dict[str, Any]) -> DictConfig:
    cfg = apply_params(plan.base, params)
    cfg.trainer.progress_bar = True
    return cfg


def _best_checkpoint(trial_dir: Path) -> Path | None:
    found = sorted(trial_dir.glob("fold_*/best.ckpt"))
    return found[0] if found else None


def summarize_sweep(result_grid, plan: SweepPlan, out_dir: Path) -> dict[str, Any]:
    """Write every result file of the sweep into `out_dir`; returns the rows and the best trial."""
    metric = plan.sweep.metric
    keys = list(dict.fromkeys(plan.searched_keys))
    rows = collect_rows(result_grid, plan)
    write_leaderboard(rows, keys, metric, out_dir / "leaderboard.csv")
    plot_parallel_coordinates(rows, keys, metric, out_dir / "parallel_coordinates.png")
    plot_metric_vs_keys(rows, keys, metric, out_dir)
    plot_rungs(rows, metric, plan, out_dir / "asha_rungs.png")
    ranked = [r for r in rows if r["best"] is not None]
    best = ranked[0] if ranked else None
    if best is not None:
        result = next(r for r in result_grid if str(Path(r.path)) == best["path"])
        cfg = best_config(plan, _trial_config(result))
        (out_dir / "best_config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
        best_dir = out_dir / "best"
        best_dir.mkdir(exist_ok=True)
        ckpt = _best_checkpoint(Path(best["path"]))
        if ckpt is not None:
            shutil.copy2(ckpt, best_dir / "checkpoint.ckpt")
        outcome_file = Path(best["path"]) / "trial_result.json"
        if outcome_file.is_file():
            outcome = json.loads(outcome_file.read_text())
            labels = ckpt_labels(ckpt) if ckpt else None
            folds = outcome.get("folds") or []
            if folds and labels is not None:
                confusion = np.sum([f["test"]["confusion"] for f in folds], axis=0).tolist()
                plot_confusion(
                    confusion,
                    list(labels),
                    best_dir / "confusion_matrix.png",
                    f"best trial {best['trial_id']}",
                )
        history = [
            {
                "epoch": float(h.get("training_iteration", i + 1)) - 1,
                **{k: v for k, v in h.items() if "/" in k},
            }
            for i, h in enumerate(best["history"])
        ]
        if history:
            plot_curves(
                {best["trial_id"]: history}, best_dir / "curves.png", f"best trial {best['trial_id']}"
            )
    return {"rows": rows, "best": best, "keys": keys}


def ckpt_labels(path: Path) -> list[str]:
    from ser.checkpoint import read_checkpoint

    return read_checkpoint(path).labels


def top_table(rows: Sequence[dict[str, Any]], keys: Sequence[str], metric: str, n: int = 10):
    """The top trials, compact enough for an 80-column terminal: key headers keep their last part."""
    from rich.table import Table

    table = Table(title=f"top trials by best {metric}", pad_edge=False)
    headers = ["#", "trial", "status", "best", "epochs", *[k.split(".")[-1] for k in keys], "s"]
    for column in headers:
        table.add_column(column, justify="left" if column in ("trial", "status") else "right")
    for rank, r in enumerate(rows[:n], 1):
        status = {"completed": "done", "error": "ERROR"}.get(r["status"], r["status"])
        style = "red" if r["status"] == "error" else ("dim" if r["stopped_early"] else "")
        table.add_row(
            str(rank),
            str(r["trial_id"]).split("_")[-1],
            status,
            _fmt(r["best"], 3),
            str(r["epochs"]),
            *[_short(r.get(k, "")) for k in keys],
            _fmt(r["wall_seconds"], 0),
            style=style,
        )
    return table


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.1e}" if 0 < abs(value) < 0.01 else f"{value:.3g}"
    return str(value)
