"""Plots people would rather look at than read: confusion matrices and training curves.

Epochs are numbered from 1 wherever a person reads them (epoch k = the k-th training epoch), as in the
leaderboard's `best_epoch` and the sweep plots; metrics.json keeps Lightning's 0-based `epoch`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402


def unweighted_recall(confusion: np.ndarray) -> float:
    """UA: mean recall over the classes that have test utterances (rows = true labels)."""
    support = confusion.sum(axis=1)
    present = support > 0
    if not present.any():
        return float("nan")
    return float(np.mean(np.diag(confusion)[present] / support[present]))


def plot_confusion(confusion: Sequence[Sequence[int]], labels: Sequence[str], path: Path, title: str) -> Path:
    """confusion_matrix.png: `confusion_figure` saved."""
    fig = confusion_figure(confusion, labels, title)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def confusion_figure(confusion: Sequence[Sequence[int]], labels: Sequence[str], title: str) -> Figure:
    """Row-normalised confusion matrix with counts, rows = true labels; UA and WA in the title."""
    cm = np.asarray(confusion, dtype=np.float64)
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    size = 1.0 + 0.7 * len(labels)
    fig, ax = plt.subplots(figsize=(size + 1.5, size))
    image = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"{title}\nUA {unweighted_recall(cm):.3f}, WA {np.trace(cm) / max(cm.sum(), 1):.3f}")
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            colour = "white" if norm[i, j] > 0.5 else "black"
            ax.text(
                j,
                i,
                f"{norm[i, j]:.2f}\n({int(cm[i, j])})",
                ha="center",
                va="center",
                fontsize=7,
                color=colour,
            )
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="recall")
    fig.tight_layout()
    return fig


def curves_figure(
    histories: Mapping[str, Sequence[Mapping[str, float]]],
    title: str,
    selected: Mapping[str, int | None] | None = None,
) -> Figure:
    """Loss and UA per epoch (1-based), one colour per fold (train dashed, val solid); the epoch whose
    checkpoint was kept (`selected`: name -> 0-based epoch, as metrics.json stores it) is ringed and
    marked by a vertical line."""
    fig, (ax_loss, ax_uar) = plt.subplots(1, 2, figsize=(11, 4))
    selected = selected or {}
    for i, (name, history) in enumerate(histories.items()):
        colour = f"C{i % 10}"
        for split, style in (("train", "--"), ("val", "-")):
            for ax, metric in ((ax_loss, "loss"), (ax_uar, "uar")):
                key = f"{split}/{metric}"
                points = [(int(h["epoch"]) + 1, h[key]) for h in history if key in h]
                if points:
                    xs, ys = zip(*points)
                    ax.plot(xs, ys, style, color=colour, marker="o", ms=2.5, label=f"{name} {split}")
        chosen = selected.get(name)
        if chosen is not None:
            for ax, metric in ((ax_loss, "loss"), (ax_uar, "uar")):
                ax.axvline(chosen + 1, color=colour, ls=":", lw=1)
                at = [
                    h[f"val/{metric}"] for h in history if int(h["epoch"]) == chosen and f"val/{metric}" in h
                ]
                if at:
                    ax.plot([chosen + 1], at[:1], "o", ms=9, mfc="none", mec=colour, mew=1.6)
    ax_loss.set_title("loss")
    ax_uar.set_title("UA (unweighted average recall)")
    for ax in (ax_loss, ax_uar):
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    ax_uar.set_ylim(0, 1)
    handles, labels = ax_uar.get_legend_handles_labels()
    if selected:
        from matplotlib.lines import Line2D

        handles.append(Line2D([], [], color="grey", ls=":", marker="o", mfc="none", label="selected epoch"))
        labels.append("selected epoch")
    ax_uar.legend(handles, labels, fontsize=7, ncol=2)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_curves(
    histories: Mapping[str, Sequence[Mapping[str, float]]],
    path: Path,
    title: str,
    selected: Mapping[str, int | None] | None = None,
) -> Path:
    """curves.png: `curves_figure` saved."""
    fig = curves_figure(histories, title, selected)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_crosscorpus(
    names: Sequence[str],
    mean: np.ndarray,
    sd: np.ndarray,
    classes: np.ndarray,
    path: Path,
    title: str = "UA: rows trained on, columns tested on",
) -> Path:
    """Heatmap of a cross-corpus UA matrix; the diagonal (within-corpus CV) is outlined, each cell shows
    mean, sd over the models averaged and the number of classes it was scored on."""
    n = len(names)
    size = 2.0 + 1.1 * n
    fig, ax = plt.subplots(figsize=(size + 1.2, size))
    image = ax.imshow(np.where(np.isfinite(mean), mean, np.nan), cmap="viridis", vmin=0, vmax=1)
    ax.set_xticks(range(n), names, rotation=30, ha="right")
    ax.set_yticks(range(n), names)
    ax.set_xlabel("tested on")
    ax.set_ylabel("trained on")
    ax.set_title(f"{title}\n(diagonal: within-corpus speaker-independent CV)", fontsize=9)
    for i in range(n):
        for j in range(n):
            if not np.isfinite(mean[i, j]):
                ax.text(j, i, "n/a", ha="center", va="center", fontsize=8, color="grey")
                continue
            colour = "black" if mean[i, j] > 0.6 else "white"
            text = f"{mean[i, j]:.2f}\n±{sd[i, j]:.2f}\n{int(classes[i, j])} cls"
            ax.text(j, i, text, ha="center", va="center", fontsize=7, color=colour)
        ax.add_patch(
            plt.Rectangle((i - 0.45, i - 0.45), 0.9, 0.9, fill=False, edgecolor="#e74c3c", linewidth=2)
        )
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="UA (macro recall)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
