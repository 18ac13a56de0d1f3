"""`fit_folds(cfg)`: the `ser fit` run. Every fold named by `data.fold` goes through `train_fold`, or, with
`data.fold=all` where `trainer.fused` says so, all of them as one fused model (ser.training.fused).

A run directory holds `config.yaml` (runnable again with `ser fit --config`), `metrics.json` (one schema
with sweep trials and evaluations: per fold and mean/sd), `confusion_matrix.png`, `curves.png`, and per
fold the best checkpoint and CSV logs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from lightning.pytorch.callbacks import Callback
from omegaconf import DictConfig

from ser.config import monitor_mode, to_yaml
from ser.config.errors import writing_to
from ser.data.folds import parse_fold
from ser.data.paths import check_output_dir
from ser.data.prepared import PreparedData, prepare_data
from ser.report.plots import plot_confusion, plot_curves
from ser.report.tables import summary_table
from ser.training.callbacks import EpochLines
from ser.training.devices import check_accelerator
from ser.training.fold import train_fold
from ser.training.fuse_decision import Decision, decide
from ser.training.fused import train_folds_fused
from ser.training.result import FoldResult, run_metrics, total_confusion, write_metrics


@dataclass
class RunResult:
    run_dir: Path
    folds: list[FoldResult]
    metrics: dict[str, Any]


def make_run_dir(cfg: DictConfig) -> Path:
    out = check_output_dir(cfg.trainer.output_dir)
    name = cfg.trainer.run_name or f"{datetime.now():%Y%m%d-%H%M%S}-{cfg.model.name}"
    run_dir = out / name
    suffix = 1
    while run_dir.exists():
        run_dir = out / f"{name}-{suffix}"
        suffix += 1
    with writing_to(out, "trainer.output_dir"):
        run_dir.mkdir(parents=True)
    return run_dir


def protocol(prepared: PreparedData, evaluated: Sequence[int]) -> dict[str, Any]:
    return {
        "folds": len(prepared.folds),
        "evaluated_folds": list(evaluated),
        "speaker_independent": not any(f.warnings for f in prepared.folds),
        "utterances": int(len(prepared.y)),
        "speakers": len(set(prepared.speakers)),
        "held_out_speakers": list(prepared.held_out),
    }


def report_data(prepared: PreparedData, console: Any) -> None:
    """Warnings and skipped files, before any training starts."""
    for message in prepared.warnings:
        console.print(f"[yellow]warning:[/] {message}")
    if prepared.skipped:
        console.print(f"[yellow]{len(prepared.skipped)} file(s) skipped:[/]")
        for item in prepared.skipped:
            console.print(f"  {item.path}: {item.reason}")


SPLITS = ("train", "val", "test")


def print_folds(prepared: PreparedData, indices: Sequence[int], seed: int, console: Any) -> None:
    """Before training: each fold's train / val / test speakers and utterance counts, so a log shows at
    once what a run trains and scores (and that no speaker is in two splits)."""
    from ser.data.folds import split_utterances

    for index in indices:
        fold = prepared.folds[index]
        sizes = [len(i) for i in split_utterances(prepared.speakers, fold, prepared.y, seed=seed)]
        parts = [
            f"{name} {size} ({len(speakers)} speaker(s): {', '.join(speakers)})"
            if speakers
            else f"{name} {size}"
            for name, size, speakers in zip(SPLITS, sizes, (fold.train, fold.val, fold.test))
        ]
        console.print(f"fold {index}: " + "; ".join(parts), highlight=False, soft_wrap=True)


def fold_line(result: FoldResult) -> str:
    """One line when a fold ends: its selection and test numbers."""
    sel = result.selection
    best = "" if sel.best is None else f"best {sel.metric} {sel.best:.3f}"
    if sel.best is not None and sel.epoch is not None:
        best += f" at epoch {int(sel.epoch) + 1}"
    test = result.test or {}
    tested = f", test UA {test['uar']:.3f} WA {test['wa']:.3f}" if "uar" in test else ""
    return f"fold {result.fold} done: {result.epochs} epoch(s), {best}{tested}, {result.wall_seconds:.0f} s"


def fold_metrics(
    cfg: DictConfig, prepared: PreparedData, folds: Sequence[FoldResult], wall_seconds: float, **extra: Any
) -> dict[str, Any]:
    """The metrics.json content of these folds of this config and data (runs and sweep trials alike)."""
    return run_metrics(
        folds,
        model=cfg.model.name,
        labels=prepared.labels,
        feature=prepared.kind,
        protocol=protocol(prepared, [f.fold for f in folds]),
        skipped=[{"path": s.path, "reason": s.reason} for s in prepared.skipped],
        wall_seconds=wall_seconds,
        **extra,
    )


def write_run(
    run_dir: Path,
    cfg: DictConfig,
    prepared: PreparedData,
    folds: Sequence[FoldResult],
    wall_seconds: float,
    **extra: Any,
) -> dict[str, Any]:
    """metrics.json and the run's plots from its fold results."""
    metrics = fold_metrics(cfg, prepared, folds, wall_seconds, **extra)
    write_metrics(run_dir / "metrics.json", metrics)
    confusion = total_confusion(folds)
    if confusion is not None:
        plot_confusion(
            confusion,
            prepared.labels,
            run_dir / "confusion_matrix.png",
            f"{cfg.model.name}: test folds {[f.fold for f in folds]}",
        )
    if any(f.history for f in folds):
        plot_curves(
            {f"fold {f.fold}": f.history for f in folds},
            run_dir / "curves.png",
            cfg.model.name,
            selected={f"fold {f.fold}": f.selection.epoch for f in folds},
        )
    return metrics


def fit_folds(
    cfg: DictConfig,
    prepared: PreparedData | None = None,
    callbacks_for_fold: Callable[[int], Sequence[Callback]] | None = None,
    run_dir: Path | None = None,
    console: Any = None,
) -> RunResult:
    """Train every fold named by `data.fold`; write the run directory; print the summary table."""
    check_accelerator(str(cfg.trainer.accelerator))  # before features and the run folder: nothing left behind
    from rich.console import Console

    console = console or Console(stderr=True)
    start = time.perf_counter()
    if run_dir is None:
        check_output_dir(cfg.trainer.output_dir)
    # no progress bars where the output is a file or a pipe: one line per fold and per epoch instead
    bar = bool(cfg.trainer.progress_bar) and console.is_terminal
    prepared = prepared or prepare_data(cfg, progress=bar)
    report_data(prepared, console)
    run_dir = run_dir or make_run_dir(cfg)
    with writing_to(run_dir, "trainer.output_dir"):
        return _fit_into(cfg, prepared, callbacks_for_fold, run_dir, console, start, bar)


def _fit_into(
    cfg: DictConfig,
    prepared: PreparedData,
    callbacks_for_fold: Callable[[int], Sequence[Callback]] | None,
    run_dir: Path,
    console: Any,
    start: float,
    bar: bool,
) -> RunResult:
    (run_dir / "config.yaml").write_text(to_yaml(cfg))
    indices = parse_fold(str(cfg.data.fold), len(prepared.folds))
    decision = decide(cfg, len(indices))
    if decision.fused and not decision.fuse_network:  # on a CPU one after another is as fast (bench/fused.py)
        decision = Decision(False)
    if decision.fused and callbacks_for_fold is not None:
        decision = Decision(False, note="not fused: per-fold Lightning callbacks need one loop per fold")
    if decision.note:
        console.print(f"[yellow]note:[/] {decision.note}")
    print_folds(prepared, indices, int(cfg.data.fold_seed), console)
    run_cfg = cfg
    if bool(cfg.trainer.progress_bar) != bar:
        run_cfg = cfg.copy()
        run_cfg.trainer.progress_bar = False
    if decision.fused:
        folds = train_folds_fused(run_cfg, prepared, indices, run_dir)
        if not bar:
            for result in folds:
                console.print(fold_line(result), highlight=False, soft_wrap=True)
    else:
        folds = []
        metric = str(cfg.trainer.monitor)
        for index in indices:
            extra = list(callbacks_for_fold(index)) if callbacks_for_fold else []
            if not bar:
                extra.append(EpochLines(index, metric, monitor_mode(metric), console))
            folds.append(train_fold(run_cfg, prepared, index, run_dir / f"fold_{index}", callbacks=extra))
            if not bar:
                console.print(fold_line(folds[-1]), highlight=False, soft_wrap=True)
    execution = {"mode": "fused" if decision.fused else "sequential", "note": decision.note}
    metrics = write_run(
        run_dir, cfg, prepared, folds, time.perf_counter() - start, extra={"execution": execution}
    )
    console.print(
        summary_table(folds, metrics["summary"], f"{cfg.model.name}: speaker-independent test folds")
    )
    return RunResult(run_dir=run_dir, folds=folds, metrics=metrics)
