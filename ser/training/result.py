"""The one result type of training and evaluation, and the one `metrics.json` schema built from it.

`ser fit`, every sweep trial (single fold, CV, DDP), the SVM baseline and `ser evaluate` return
`FoldResult`s and write `metrics.json` through `run_metrics`, so a leaderboard, a report or a test reads
every run the same way. `selection` says which validation metric chose the checkpoint and its value
there; `test` is scored once, on that checkpoint.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ser.report.metrics import mean_sd

SCHEMA_VERSION = 2  # metrics.json layout; bump when a field changes meaning


@dataclass
class Selection:
    """How the fold's checkpoint was chosen: `metric` (mode `mode`) was `best` at `epoch` (0-based)."""

    metric: str
    mode: str
    best: float | None
    epoch: int | None


@dataclass
class FoldResult:
    """One speaker fold, trained (and tested once) or only evaluated."""

    fold: int
    speakers: dict[str, list[str]]
    sizes: dict[str, int]
    test: dict[str, Any] | None  # wa, uar, f1, loss, per_class_recall, confusion, labels
    selection: Selection
    epochs: int = 0
    parameters: int = 0
    wall_seconds: float = 0.0
    checkpoint: str | None = None
    history: list[dict[str, float]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    world_size: int = 1
    members: list[dict[str, Any]] = field(default_factory=list)  # an ensemble's members (model.ensemble)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FoldResult:
        values = dict(data)
        values["selection"] = Selection(**values["selection"])
        return cls(**values)


def best_of(
    history: Sequence[Mapping[str, float]], metric: str, mode: str
) -> tuple[float | None, int | None]:
    """(best value of `metric` over the epochs, its epoch): what the checkpoint callback kept."""
    rows = [(h[metric], int(h["epoch"])) for h in history if metric in h and np.isfinite(h[metric])]
    if not rows:
        return None, None
    pick = max if mode == "max" else min
    return pick(rows, key=lambda row: row[0])


def summarize(folds: Sequence[FoldResult]) -> dict[str, dict[str, float]]:
    """Mean and sd over folds of the test metrics, the selection metric's best value and the epochs."""
    summary: dict[str, dict[str, float]] = {}
    tested = [f.test for f in folds if f.test is not None]
    if tested:
        for key in ("wa", "uar", "f1"):
            summary[f"test/{key}"] = mean_sd([t[key] for t in tested])
    chosen = [f.selection for f in folds if f.selection.best is not None]
    if chosen:
        summary[f"{chosen[0].metric}_best"] = mean_sd([s.best for s in chosen])
    summary["epochs"] = mean_sd([f.epochs for f in folds])
    return summary


def total_confusion(folds: Sequence[FoldResult]) -> list[list[int]] | None:
    matrices = [f.test["confusion"] for f in folds if f.test is not None]
    return np.sum(matrices, axis=0).tolist() if matrices else None


def run_metrics(
    folds: Sequence[FoldResult],
    *,
    model: str,
    labels: Sequence[str],
    feature: str,
    protocol: Mapping[str, Any],
    skipped: Sequence[Mapping[str, str]] = (),
    wall_seconds: float = 0.0,
    status: str = "completed",
    error: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The `metrics.json` content of a run, a sweep trial or an evaluation."""
    return {
        "schema_version": SCHEMA_VERSION,
        "status": status,
        "error": error,
        "model": model,
        "parameters": folds[0].parameters if folds else 0,
        "labels": list(labels),
        "feature": feature,
        "protocol": dict(protocol),
        "folds": [f.to_dict() for f in folds],
        "summary": summarize(folds) if folds else {},
        "confusion_total": total_confusion(folds),
        "skipped": [dict(s) for s in skipped],
        "wall_seconds": wall_seconds,
        **dict(extra or {}),
    }


def write_metrics(path: Path, metrics: Mapping[str, Any]) -> Path:
    """Write `metrics.json` atomically (a sweep driver may read it while a trial writes; a full disk
    leaves no truncated file)."""
    from ser.data.paths import write_atomic

    return write_atomic(path, json.dumps(metrics, indent=2, default=str))


def read_metrics(path: Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text())


def fold_results(metrics: Mapping[str, Any]) -> list[FoldResult]:
    return [FoldResult.from_dict(f) for f in metrics.get("folds", [])]
