"""Plots and tables people would rather look at than read: confusion matrices, curves, summaries."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def classification_metrics(
    y_true: np.ndarray, y_pred: np.ndarray, labels: Sequence[str]
) -> dict[str, object]:
    """WA (accuracy), UA (macro recall over classes present), macro-F1, per-class recall, confusion."""
    n = len(labels)
    confusion = np.zeros((n, n), dtype=np.int64)
    np.add.at(confusion, (np.asarray(y_true), np.asarray(y_pred)), 1)
    support = confusion.sum(axis=1)
    predicted = confusion.sum(axis=0)
    tp = np.diag(confusion).astype(np.float64)
    present = support > 0
    recall = np.divide(tp, support, out=np.zeros(n), where=present)
    precision = np.divide(tp, predicted, out=np.zeros(n), where=predicted > 0)
    f1 = np.divide(
        2 * precision * recall, precision + recall, out=np.zeros(n), where=(precision + recall) > 0
    )
    return {
        "wa": float(tp.sum() / max(support.sum(), 1)),
        "uar": float(recall[present].mean()) if present.any() else 0.0,
        "f1": float(f1[present].mean()) if present.any() else 0.0,
        "per_class_recall": {label: float(r) for label, r, p in zip(labels, recall, present) if p},
        "confusion": confusion.tolist(),
    }


def mean_sd(values: Sequence[float]) -> dict[str, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    arr = np.asarray(values, dtype=np.float64)
    sd = float(arr.std(ddof=1)) if len(arr) > 1 else 0.0
    return {"mean": float(arr.mean()) if len(arr) else math.nan, "sd": sd, "n": len(arr)}


def plot_confusion(confusion: Sequence[Sequence[int]], labels: Sequence[str], path: Path, title: str) -> Path:
    """Row-normalised confusion matrix with counts, rows = true labels."""
    cm = np.asarray(confusion, dtype=np.float64)
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    size = 1.0 + 0.7 * len(labels)
    fig, ax = plt.subplots(figsize=(size + 1.5, size))
    image = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
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
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_curves(histories: Mapping[str, Sequence[Mapping[str, float]]], path: Path, title: str) -> Path:
    """Loss and UA per epoch, one line per fold (train dashed, val solid)."""
    fig, (ax_loss, ax_uar) = plt.subplots(1, 2, figsize=(11, 4))
    for i, (name, history) in enumerate(histories.items()):
        colour = f"C{i % 10}"
        for split, style in (("train", "--"), ("val", "-")):
            for ax, metric in ((ax_loss, "loss"), (ax_uar, "uar")):
                key = f"{split}/{metric}"
                points = [(h["epoch"], h[key]) for h in history if key in h]
                if points:
                    xs, ys = zip(*points)
                    ax.plot(xs, ys, style, color=colour, label=f"{name} {split}")
    ax_loss.set_title("loss")
    ax_uar.set_title("UA (unweighted average recall)")
    for ax in (ax_loss, ax_uar):
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    ax_uar.set_ylim(0, 1)
    ax_uar.legend(fontsize=7, ncol=2)
    fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def summary_table(
    fold_results: Sequence[Mapping[str, object]], summary: Mapping[str, Mapping[str, float]], title: str
):
    """A rich table: one row per fold, then mean +- sd."""
    from rich.table import Table

    table = Table(title=title)
    for column in ("fold", "test speakers", "WA", "UA", "macro-F1", "epochs", "seconds"):
        table.add_column(column, justify="right" if column not in ("test speakers",) else "left")
    for r in fold_results:
        test = r["test"]
        table.add_row(
            str(r["fold"]),
            ",".join(r["speakers"]["test"]),
            f"{test['wa']:.3f}",
            f"{test['uar']:.3f}",
            f"{test['f1']:.3f}",
            str(r["epochs"]),
            f"{r['wall_seconds']:.0f}",
        )
    if len(fold_results) > 1:
        cells = [
            f"{summary[k]['mean']:.3f} ± {summary[k]['sd']:.3f}" for k in ("test/wa", "test/uar", "test/f1")
        ]
        table.add_row("mean ± sd", "", *cells, "", "", style="bold")
    return table
