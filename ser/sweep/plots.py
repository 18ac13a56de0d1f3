"""Sweep plots: parallel coordinates, metric against each searched key, and ASHA's rungs.

Axes follow the search space: a log axis for `loguniform` keys, integer ticks for integer keys, every
category labelled; points that would overlap are jittered sideways and counted. Epochs are numbered
from 1 (epoch k = the k-th reported validation epoch), as in the leaderboard and the training curves.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

STATUS_STYLE = {"completed": "-", "stopped": ":", "error": "--", "interrupted": "-."}


def axis_kind(values: Sequence[Any], sampler: str | None) -> str:
    """'log' | 'int' | 'float' | 'category' for a key's values and its sampler."""
    present = [v for v in values if v is not None]
    if not present or any(isinstance(v, (str, bool)) for v in present):
        return "category"
    if sampler == "loguniform":
        return "log"
    if all(float(v).is_integer() for v in present):
        return "int"
    return "float"


def _categories(values: Sequence[Any]) -> list[str]:
    seen: list[str] = []
    for v in values:
        if str(v) not in seen:
            seen.append(str(v))
    return sorted(seen, key=lambda c: (c == "None", c))


def _position(values: Sequence[Any], kind: str) -> tuple[np.ndarray, list[str] | None]:
    if kind == "category":
        cats = _categories(values)
        return np.array([cats.index(str(v)) for v in values], dtype=float), cats
    return np.array([float(v) for v in values], dtype=float), None


def _jitter(xs: np.ndarray, ys: np.ndarray, width: float) -> np.ndarray:
    """Spread points that share an x and (nearly) a y sideways, so overlapping trials stay visible."""
    out = xs.copy()
    groups: dict[tuple[float, float], list[int]] = {}
    for i, (x, y) in enumerate(zip(xs, ys)):
        groups.setdefault((float(x), round(float(y), 3)), []).append(i)
    for members in groups.values():
        if len(members) > 1:
            offsets = np.linspace(-width, width, len(members))
            for i, off in zip(members, offsets):
                out[i] = xs[i] + off
    return out


def plot_metric_vs_keys(rows, keys, metric: str, samplers: dict[str, str], out_dir: Path) -> list[Path]:
    """One scatter per searched key: best metric of each trial, completed and stopped told apart."""
    paths = []
    rows = [r for r in rows if r["best"] is not None]
    for key in keys:
        present = [r for r in rows if key in r]
        if not present:
            continue
        values = [r[key] for r in present]
        kind = axis_kind(values, samplers.get(key))
        xs, cats = _position(values, kind)
        ys = np.array([r["best"] for r in present])
        fig, ax = plt.subplots(figsize=(5.5, 3.8))
        if kind in ("category", "int"):
            span = (xs.max() - xs.min()) if len(xs) > 1 else 1.0
            xs_plot = _jitter(xs, ys, 0.12 if kind == "category" else 0.03 * max(span, 1.0))
        else:
            xs_plot = xs
        stopped = np.array([bool(r["stopped_early"]) for r in present])
        ax.scatter(xs_plot[~stopped], ys[~stopped], color="C0", alpha=0.85, label="completed")
        ax.scatter(xs_plot[stopped], ys[stopped], color="C3", alpha=0.85, marker="x", label="stopped early")
        counts = Counter(float(x) for x in xs)
        for x, n in counts.items():
            if n > 1:
                ax.annotate(
                    f"n={n}",
                    (x, ys.min()),
                    textcoords="offset points",
                    xytext=(0, -14),
                    ha="center",
                    fontsize=7,
                )
        if cats is not None:
            ax.set_xticks(range(len(cats)), cats, rotation=20)
        elif kind == "log":
            ax.set_xscale("log")
        elif kind == "int":
            ax.set_xticks(sorted({int(x) for x in xs}))
        ax.set_xlabel(key)
        ax.set_ylabel(f"best {metric}")
        ax.set_title(f"{metric} vs {key}", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best")
        fig.tight_layout()
        path = out_dir / f"metric_vs_{key.replace('/', '_')}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths


def _tick_text(value: float, kind: str) -> str:
    if kind == "log":
        return f"{10**value:.2g}"
    return f"{value:.0f}" if kind == "int" else f"{value:.3g}"


def plot_parallel_coordinates(rows, keys, metric: str, samplers: dict[str, str], path: Path) -> Path | None:
    """parallel_coordinates.png: `parallel_figure` saved (None without a scored trial or a key)."""
    fig = parallel_figure(rows, keys, metric, samplers)
    return None if fig is None else _save(fig, path)


def parallel_figure(rows, keys, metric: str, samplers: dict[str, str]):
    """One line per trial across the searched keys and the metric, coloured by the metric; every
    category and the ends of every numeric axis labelled (log-scaled for loguniform keys)."""
    rows = [r for r in rows if r["best"] is not None]
    if not rows or not keys:
        return None
    columns = [*keys, metric]
    data, labels = [], []
    for key in columns:
        values = [r.get(key) if key != metric else r["best"] for r in rows]
        kind = axis_kind(values, samplers.get(key)) if key != metric else "float"
        axis, cats = _position(values, kind)
        if kind == "log":
            axis = np.log10(axis)
        lo, hi = float(np.min(axis)), float(np.max(axis))
        data.append((axis - lo) / (hi - lo) if hi > lo else np.full_like(axis, 0.5))
        distinct = sorted(set(axis.tolist()))
        if cats is not None:
            ticks = [((i - lo) / (hi - lo) if hi > lo else 0.5, c) for i, c in enumerate(cats)]
        elif kind == "int" and len(distinct) <= 12:  # every value a trial took, like a category
            ticks = [((v - lo) / (hi - lo) if hi > lo else 0.5, _tick_text(v, kind)) for v in distinct]
        else:
            ends = [(0.0, lo), (1.0, hi)] if hi > lo else [(0.5, lo)]
            ticks = [(y, _tick_text(v, kind)) for y, v in ends]
        labels.append(ticks)
    scores = np.array([r["best"] for r in rows])
    cmap = plt.get_cmap("viridis")
    norm = plt.Normalize(scores.min(), scores.max() if scores.max() > scores.min() else scores.min() + 1e-9)
    fig, ax = plt.subplots(figsize=(2.2 + 1.9 * len(columns), 4.8))
    xs = np.arange(len(columns))
    for i in np.argsort(scores):
        style = ":" if rows[i]["stopped_early"] else "-"
        ax.plot(xs, [d[i] for d in data], style, color=cmap(norm(scores[i])), alpha=0.85, lw=1.6)
    for x, ticks in zip(xs, labels):
        ax.axvline(x, color="grey", lw=0.8)
        for y, text in ticks:
            ax.text(
                x + 0.04,
                y,
                text,
                ha="left",
                va="center",
                fontsize=7,
                bbox=dict(fc="white", ec="none", alpha=0.7, pad=0.5),
            )
    ax.set_xticks(xs, columns, rotation=15)
    ax.set_yticks([])
    ax.set_ylim(-0.08, 1.08)
    ax.legend(
        handles=[
            Line2D([], [], color="grey", ls="-", label="completed"),
            Line2D([], [], color="grey", ls=":", label="stopped early"),
        ],
        fontsize=7,
        loc="upper left",
        bbox_to_anchor=(0, 1.12),
        ncol=2,
        frameon=False,
    )
    fig.colorbar(plt.cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax, label=f"best {metric}")
    ax.set_title("parallel coordinates (colour = best metric)", pad=22)
    return fig


def _value_colours(rows, key: str | None, sampler: str | None):
    """(colour of each row, legend handles or None, colorbar mappable or None) for the swept value `key`:
    a discrete legend for categories and small integer sets, a colour bar for continuous values."""
    values = [r.get(key) for r in rows] if key else []
    if not key or all(v is None for v in values):
        return ["C0"] * len(rows), None, None
    kind = axis_kind(values, sampler)
    distinct = (
        _categories(values) if kind == "category" else sorted({float(v) for v in values if v is not None})
    )
    if kind in ("category", "int") or len(distinct) <= 6:
        names = [
            str(v) if kind == "category" else _tick_text(v, "int" if kind == "int" else "float")
            for v in distinct
        ]
        index = {d: i for i, d in enumerate(distinct)}
        cmap = plt.get_cmap("tab10")
        colours = [
            "C7" if v is None else cmap(index[str(v) if kind == "category" else float(v)] % 10)
            for v in values
        ]
        handles = [Line2D([], [], color=cmap(i % 10), lw=2, label=n) for i, n in enumerate(names)]
        return colours, handles, None
    xs = np.array([np.nan if v is None else float(v) for v in values])
    scale = np.log10 if kind == "log" else (lambda a: a)
    lo, hi = np.nanmin(scale(xs)), np.nanmax(scale(xs))
    norm = plt.Normalize(lo, hi if hi > lo else lo + 1e-9)
    cmap = plt.get_cmap("plasma")
    colours = ["C7" if np.isnan(x) else cmap(norm(scale(x))) for x in xs]
    mappable = plt.cm.ScalarMappable(norm=norm, cmap=cmap)
    return colours, None, mappable


def plot_rungs(
    rows,
    metric: str,
    milestones: Sequence[int],
    scheduler: str,
    max_t: int,
    path: Path,
    colour_key: str | None = None,
    sampler: str | None = None,
) -> Path | None:
    """asha_rungs.png: `rungs_figure` saved (None when no trial reported an epoch)."""
    fig = rungs_figure(rows, metric, milestones, scheduler, max_t, colour_key, sampler)
    return None if fig is None else _save(fig, path)


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def rungs_figure(
    rows,
    metric: str,
    milestones: Sequence[int],
    scheduler: str,
    max_t: int,
    colour_key: str | None = None,
    sampler: str | None = None,
):
    """Metric per epoch of every trial, coloured by its value of the swept key `colour_key` (legend or
    colour bar) with the line style telling its status, the scheduler's rungs (where ASHA compared
    trials), and how many trials trained each number of epochs (integer axes)."""
    if not any(r["history"] for r in rows):
        return None
    fig, (ax_curve, ax_bar) = plt.subplots(1, 2, figsize=(11, 4), gridspec_kw={"width_ratios": [3, 2]})
    colours, value_handles, mappable = _value_colours(rows, colour_key, sampler)
    for r, colour in zip(rows, colours):
        points = [(h.get("training_iteration"), h.get(metric)) for h in r["history"]]
        points = [(x, y) for x, y in points if x is not None and y is not None and np.isfinite(y)]
        if points:
            xs, ys = zip(*points)
            ax_curve.plot(
                xs, ys, STATUS_STYLE.get(r["status"], "-"), marker="o", color=colour, alpha=0.75, lw=1.3, ms=3
            )
    for m in milestones:
        ax_curve.axvline(m, color="grey", ls=":", lw=1)
    status_handles = [
        Line2D([], [], color="grey", ls=style, label=status)
        for status, style in STATUS_STYLE.items()
        if any(r["status"] == status for r in rows)
    ]
    if milestones:
        status_handles.append(Line2D([], [], color="grey", ls=":", lw=0.8, label=f"rungs {list(milestones)}"))
    legend = ax_curve.legend(handles=status_handles, fontsize=7, loc="lower right")
    if value_handles:
        ax_curve.add_artist(legend)
        ax_curve.legend(
            handles=value_handles, fontsize=7, loc="lower left", title=colour_key, title_fontsize=7
        )
    if mappable is not None:
        label = f"log10 {colour_key}" if sampler == "loguniform" else str(colour_key)
        fig.colorbar(mappable, ax=ax_curve, label=label, pad=0.01)
    ax_curve.set_xlabel("epoch")
    ax_curve.set_ylabel(metric)
    ax_curve.set_xlim(0.5, max_t + 0.5)
    ax_curve.xaxis.set_major_locator(MaxNLocator(integer=True))
    by = f", colour = {colour_key}" if colour_key and (value_handles or mappable is not None) else ""
    ax_curve.set_title(f"{metric} per epoch ({scheduler}{by})", fontsize=9)
    ax_curve.grid(alpha=0.3)
    epochs = [r["epochs"] for r in rows]
    ax_bar.hist(epochs, bins=np.arange(0.5, int(max_t) + 1.5), color="C0", rwidth=0.9, label="trials")
    for m in milestones:
        ax_bar.axvline(m, color="grey", ls=":", lw=1)
    ax_bar.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax_bar.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax_bar.set_xlim(0.5, max_t + 0.5)
    ax_bar.set_xlabel("epochs trained")
    ax_bar.set_ylabel("trials")
    ax_bar.legend(fontsize=7, loc="upper left")
    ax_bar.set_title(f"epochs per trial: {sum(epochs)} in total", fontsize=9)
    return fig
