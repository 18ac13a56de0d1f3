"""The driver's Tune callbacks: console progress and one live W&B run per trial.

They are module-level classes on purpose. Tune pickles its callbacks into the experiment state, and
`Tuner.restore` (`--resume`) unpickles them: a class defined inside a function is pickled by value,
together with a private copy of the module globals it reads, so a resumed sweep's callbacks wrote to
copies nobody looked at (no trial lines on the console; W&B runs never finished with their test metrics
and status tag). Pickled by reference, the restored callbacks reach the live objects of the new process.
Their pickled state is only plain settings; the live objects stay in module-level registries.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ray.tune import Callback

from ser.sweep import wandb_log
from ser.sweep.progress import PROGRESS, trial_error


class ProgressCallback(Callback):
    """Forwards trial events to the live `SweepProgress` (ser.sweep.run)."""

    key = "ser-sweep"

    def _live(self):
        return PROGRESS.get(self.key)

    def on_step_begin(self, iteration, trials, **info):
        if live := self._live():  # a resumed sweep: trials that ended before count as done
            live.restored(trials)

    def on_trial_start(self, iteration, trials, trial, **info):
        if live := self._live():
            live.event(trial, "started")
            live.update(trials)

    def on_trial_result(self, iteration, trials, trial, result, **info):
        if live := self._live():
            live.record(trial, result)
            live.update(trials)

    def on_trial_complete(self, iteration, trials, trial, **info):
        if live := self._live():
            live.finished(trial)
            live.update(trials)

    def on_trial_error(self, iteration, trials, trial, **info):
        if live := self._live():
            live.event(trial, f"[red]failed[/]: {trial_error(trial)}", error=True)
            live.update(trials)


class WandbTrials(Callback):
    """One live W&B run per trial: opened at its start, every epoch logged, finished with its outcome."""

    def __init__(self, project: str, group: str, mode: str, base: dict[str, Any]) -> None:
        self.project, self.group, self.mode, self.base = project, group, mode, base

    def _run(self, trial):
        run = wandb_log.RUNS.get(trial.trial_id)
        if run is None:
            from omegaconf import OmegaConf

            from ser.sweep.trials import trial_config

            trial_dir = Path(trial.path or trial.local_path)
            trial_dir.mkdir(parents=True, exist_ok=True)
            config = OmegaConf.to_container(trial_config(dict(trial.config or {}), self.base), resolve=True)
            run = wandb_log.init_run(
                project=self.project,
                group=self.group,
                name=f"{self.group}-{trial.trial_id}",
                id=wandb_log.run_id(self.group, trial.trial_id),
                dir=str(trial_dir),
                mode=self.mode,
                config=config,
                resume="allow",
            )
            wandb_log.RUNS[trial.trial_id] = run
        return run

    def on_trial_start(self, iteration, trials, trial, **info):
        self._run(trial)

    def on_trial_result(self, iteration, trials, trial, result, **info):
        row = wandb_log.loggable(result)
        self._run(trial).log(row, step=int(row.get("training_iteration", 0)))

    def on_trial_complete(self, iteration, trials, trial, **info):
        wandb_log.finish_trial(trial, "completed")

    def on_trial_error(self, iteration, trials, trial, **info):
        wandb_log.finish_trial(trial, "failed")

    def on_experiment_end(self, trials, **info):
        for trial in trials:  # Tune does not always call on_trial_complete for the last trials
            if trial.trial_id in wandb_log.RUNS:  # still running at the end: Ctrl-C, resumed later
                state = {"ERROR": "failed", "TERMINATED": "completed"}.get(trial.status, "interrupted")
                wandb_log.finish_trial(trial, state)
