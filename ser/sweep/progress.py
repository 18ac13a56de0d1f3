"""The sweep's console: one line per trial event (started, stopped, completed, failed) and a progress bar.

The live `SweepProgress` sits in a module-level registry that the Tune callback (ser.sweep.callbacks)
looks up by key, because Tune pickles callbacks and a resumed sweep unpickles them in a new process.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from ser.sweep.trials import EPOCH

PROGRESS: dict[str, SweepProgress] = {}  # "ser-sweep" -> the live progress of this process


def trial_error(trial) -> str:
    """The failed trial's own one-line error (its metrics.json), not Ray's wrapped traceback."""
    error = None
    for folder in (trial.local_path, trial.path):  # the trial's working copy is synced to storage later
        try:
            error = json.loads((Path(folder) / "metrics.json").read_text()).get("error")
            break
        except (OSError, ValueError, TypeError):
            continue
    return str(error or "see error_traceback.txt in the trial folder")[:300]


class SweepProgress:
    """One console line per trial event and a progress bar: trials done, running, pending, failed, and
    the best metric so far."""

    def __init__(self, total: int, metric: str, mode: str, max_t: int, console) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.metric, self.mode, self.max_t, self.best = metric, mode, max_t, None
        self.console = console
        self.epochs: dict[str, int] = {}
        self.trial_best: dict[str, float] = {}
        self.done: set[str] = set()
        self.failed: set[str] = set()
        self.progress = Progress(
            TextColumn("[bold]sweep"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=console,
        )
        self.task = self.progress.add_task("starting", total=total)
        self.seen_restored = False

    def _better(self, value: float) -> bool:
        return self.best is None or (value > self.best if self.mode == "max" else value < self.best)

    def record(self, trial, result: dict[str, Any]) -> None:
        self.epochs[trial.trial_id] = int(result.get(EPOCH, result.get("training_iteration", 0)))
        value = result.get(self.metric)
        if isinstance(value, (int, float)) and math.isfinite(value):
            mine = self.trial_best.get(trial.trial_id)
            if mine is None or (value > mine if self.mode == "max" else value < mine):
                self.trial_best[trial.trial_id] = float(value)
            if self._better(float(value)):
                self.best = float(value)

    def event(self, trial, what: str, error: bool = False) -> None:
        if error:
            self.done.add(trial.trial_id)
            self.failed.add(trial.trial_id)
        epochs = self.epochs.get(trial.trial_id, 0)
        best = self.trial_best.get(trial.trial_id)
        at = (
            f" after {epochs} epoch(s), best {self.metric} {best:.3f}"
            if best is not None and not error
            else ""
        )
        self.progress.console.print(f"trial {trial.trial_id} {what}{at}")

    def finished(self, trial) -> None:
        self.done.add(trial.trial_id)
        epochs = self.epochs.get(trial.trial_id, 0)
        self.event(trial, "completed" if epochs >= self.max_t else "[dim]stopped by the scheduler[/]")

    def restored(self, trials) -> None:
        """Once, at the first step: a resumed sweep's trials that ended before count as done, each with
        the line its end printed then, so the console reads as an uninterrupted sweep's."""
        if self.seen_restored:
            return
        self.seen_restored = True
        for trial in trials:
            if trial.status not in ("TERMINATED", "ERROR") or trial.trial_id in self.done:
                continue
            self.done.add(trial.trial_id)
            result = trial.last_result or {}
            self.record(trial, result)
            epochs = self.epochs.get(trial.trial_id, 0)
            if trial.status == "ERROR":
                self.failed.add(trial.trial_id)
                what = f"[red]failed[/]: {trial_error(trial)}"
            else:
                what = "completed" if epochs >= self.max_t else "[dim]stopped by the scheduler[/]"
            self.progress.console.print(f"trial {trial.trial_id} {what} (before the resume)")
        self.update(trials)

    def update(self, trials) -> None:
        # Tune calls on_trial_complete/on_trial_error before it changes the trial's status: a trial this
        # bar has seen finish is not counted as running (the last bar read `8/8 ... running 1`)
        states = [t.status for t in trials if t.trial_id not in self.done]
        errors = len({t.trial_id for t in trials if t.status == "ERROR"} | self.failed)
        best = "n/a" if self.best is None else f"{self.best:.3f}"
        text = (
            f"best {self.metric}={best} | running {states.count('RUNNING')} | "
            f"pending {states.count('PENDING')} | errors {errors}"
        )
        self.progress.update(self.task, completed=len(self.done), description=text)

    def __enter__(self):
        PROGRESS["ser-sweep"] = self
        self.progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.stop()
        PROGRESS.pop("ser-sweep", None)
