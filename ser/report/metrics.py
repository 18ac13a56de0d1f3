"""SER metrics from predictions: WA (accuracy), UA (macro recall over the classes present), macro-F1,
per-class recall and the confusion matrix; mean and sd over folds."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def classification_metrics(
    y_true: np.ndarray, y_pred: np.ndarray, labels: Sequence[str]
) -> dict[str, object]:
    """WA (accuracy), UA (macro recall over classes present), macro-F1, per-class recall, confusion."""
    n = len(labels)
    confusion = np.zeros((n, n), dtype=np.int64)
    np.add.at(confusion, (np.asarray(y_true), np.asarray(y_pred)), 1)
    return metrics_from_confusion(confusion, labels)


def metrics_from_confusion(confusion: Sequence[Sequence[int]], labels: Sequence[str]) -> dict[str, object]:
    """The metrics of a confusion matrix (rows = true labels). UA and macro-F1 average over the classes
    PRESENT in the evaluated data: a label with no examples has no recall (None in `per_class_recall`),
    rather than a 0 that would punish the model for the data's composition."""
    confusion = np.asarray(confusion, dtype=np.int64)
    n = len(labels)
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
        "per_class_recall": {
            label: (float(r) if p else None) for label, r, p in zip(labels, recall, present)
        },
        "labels": list(labels),
        "confusion": confusion.tolist(),
    }


def mean_sd(values: Sequence[float]) -> dict[str, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    arr = np.asarray(values, dtype=np.float64)
    sd = float(arr.std(ddof=1)) if len(arr) > 1 else 0.0
    return {"mean": float(arr.mean()) if len(arr) else math.nan, "sd": sd, "n": len(arr)}
