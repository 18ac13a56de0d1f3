"""Console tables (rich): one row per fold, then mean +- sd."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def summary_table(folds: Sequence[Any], summary: Mapping[str, Mapping[str, float]], title: str):
    """One row per fold (test speakers, WA, UA, macro-F1, the selection metric, epochs, seconds), then the
    mean and the sd over folds on two rows. `folds` are `FoldResult`s (anything with their attributes).

    It fits 80 columns without cutting anything: numbers never wrap, the test speakers wrap between
    speakers (a fold of 12 actors is listed whole), headers wrap between words."""
    from rich.table import Table

    metric = folds[0].selection.metric if folds else "val/uar"
    table = Table(title=title)
    for column in ("fold", "test speakers", "WA", "UA", "macro-F1", f"best\n{metric}", "epochs", "seconds"):
        if column == "test speakers":
            table.add_column(column, justify="left", overflow="fold", min_width=12)
        else:
            table.add_column(column, justify="right", no_wrap=True)
    for r in folds:
        test = r.test or {}
        best = r.selection.best
        table.add_row(
            str(r.fold),
            ", ".join(s.rsplit(":", 1)[-1] for s in r.speakers["test"]),
            *(f"{test[k]:.3f}" if k in test else "" for k in ("wa", "uar", "f1")),
            "" if best is None else f"{best:.3f}",
            str(r.epochs),
            f"{r.wall_seconds:.0f}",
        )
    if len(folds) > 1:
        keys = ("test/wa", "test/uar", "test/f1", f"{metric}_best")
        for stat in ("mean", "sd"):
            cells = [f"{summary[k][stat]:.3f}" if k in summary else "" for k in keys]
            table.add_row(stat, "", *cells, "", "", style="bold")
    return table
