"""The sweep driver: features once, then a Ray Tune `Tuner` (ASHA by default), W&B, resume, results.

The driver owns the Tuner, the scheduler, the searcher and the loggers; trials only train. Features are
computed (or read from the disk cache) here, before any trial starts, and handed to every trial through
`tune.with_parameters`, which puts them in Ray's object store once: trials map the same memory.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import OmegaConf

from ser.config import ConfigError
from ser.data.datamodule import PreparedData, prepare_data
from ser.data.types import CorpusError
from ser.sweep.spec import COND_SEP, SweepPlan, apply_params, to_tune_space
from ser.sweep.trainable import prepared_key, run_trial


def _set_ray_env() -> None:
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    # trials may log with their own WandbLogger: let them finish writing when a trial is stopped
    os.environ.setdefault("RAY_kill_child_processes_on_worker_exit", "0")
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    os.environ.setdefault("WANDB_SILENT", "true")


def count_trials(plan: SweepPlan) -> int:
    grid = math.prod(len(args) for sampler, args in plan.space.values() if sampler == "grid")
    return int(plan.sweep.num_samples) * grid


def _variants(plan: SweepPlan) -> list[Any]:
    """One config per distinct (feature kind, waveform mode) the trials can need."""
    names = [plan.base.model.name]
    for key, (sampler, args) in plan.space.items():
        if key == "model.name" and sampler in ("choice", "grid"):
            names = list(args)
    seen, configs = set(), []
    for name in names:
        cfg = apply_params(plan.base, {"model.name": name})
        key = prepared_key(cfg)
        if key not in seen:
            seen.add(key)
            configs.append(cfg)
    return configs


def prepare_shared(plan: SweepPlan, console) -> dict[str, PreparedData]:
    shared = {}
    for cfg in _variants(plan):
        start = time.perf_counter()
        data = prepare_data(cfg, progress=True)
        key = prepared_key(cfg)
        # a plain ndarray, not the cache's np.memmap: numpy pickles subclasses in-band, so every trial
        # would unpickle its own private copy; a plain array goes to Ray's object store out-of-band and
        # each trial maps the same shared-memory pages (bench/trials.py measures it)
        shared[key] = dataclasses.replace(data, x=np.asarray(data.x))
        origin = "from cache" if data.from_cache else "computed"
        served = " as waveforms" if data.waveform_mode else ""
        console.print(
            f"features [bold]{data.kind}[/]{served}: {len(data.y)} utterances, "
            f"{len(set(data.speakers))} speakers, "
            f"{len(data.labels)} labels, {len(data.folds)} folds "
            f"({origin}, {time.perf_counter() - start:.1f} s)"
        )
        for item in data.skipped:
            console.print(f"  [yellow]skipped[/] {item.path}: {item.reason}")
        for message in data.warnings:
            console.print(f"  [yellow]warning:[/] {message}")
    return shared


def build_scheduler(plan: SweepPlan):
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, MedianStoppingRule

    s = plan.sweep.scheduler
    if s.name == "asha":
        # max_t + 1: a trial that reaches max_t epochs ends by itself (and scores its test fold) instead of
        # being stopped by the scheduler at its last report
        return ASHAScheduler(
            time_attr="training_iteration",
            max_t=int(s.max_t) + 1,
            grace_period=int(s.grace_period),
            reduction_factor=float(s.reduction_factor),
        )
    if s.name == "median":
        return MedianStoppingRule(time_attr="training_iteration", grace_period=int(s.grace_period))
    return FIFOScheduler()


def build_searcher(plan: SweepPlan):
    from ray.tune.search import BasicVariantGenerator

    sweep = plan.sweep
    limit = int(sweep.max_concurrent_trials)
    if sweep.searcher.name == "optuna":
        if any(sampler == "grid" for sampler, _ in plan.space.values()):
            raise ConfigError("invalid search space: 'grid' cannot be used with searcher optuna (use choice)")
        import optuna
        from ray.tune.search import ConcurrencyLimiter
        from ray.tune.search.optuna import OptunaSearch

        sampler = optuna.samplers.TPESampler(
            n_startup_trials=int(sweep.searcher.n_startup_trials), seed=int(sweep.seed)
        )
        searcher = OptunaSearch(sampler=sampler, seed=int(sweep.seed))
        return ConcurrencyLimiter(searcher, max_concurrent=limit) if limit > 0 else searcher
    return BasicVariantGenerator(random_state=int(sweep.seed), max_concurrent=limit)


_PROGRESS: dict[str, SweepProgress] = {}  # live progress bars; callbacks pickle only the key


def _progress_callback():
    """A Tune callback that forwards to the live `SweepProgress`; pickled into the experiment state as
    a bare key, so a resumed sweep's callback reattaches to the new bar."""
    from ray.tune import Callback

    class ProgressCallback(Callback):
        key = "ser-sweep"

        def _live(self):
            return _PROGRESS.get(self.key)

        def on_trial_start(self, iteration, trials, trial, **info):
            if self._live():
                self._live().update(trials)

        def on_trial_result(self, iteration, trials, trial, result, **info):
            if self._live():
                self._live().record(result)
                self._live().update(trials)

        def on_trial_complete(self, iteration, trials, trial, **info):
            if self._live():
                self._live().update(trials)

        def on_trial_error(self, iteration, trials, trial, **info):
            if self._live():
                self._live().update(trials)

    return ProgressCallback()


class SweepProgress:
    """A rich progress bar: trials finished, running, pending, failed, and the best metric so far."""

    def __init__(self, total: int, metric: str, mode: str, console) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.metric, self.mode, self.best = metric, mode, None
        self.progress = Progress(
            TextColumn("[bold]sweep"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=console,
        )
        self.task = self.progress.add_task("starting", total=total)

    def record(self, result: dict[str, Any]) -> None:
        value = result.get(self.metric)
        if isinstance(value, (int, float)) and math.isfinite(value):
            if self.best is None or (value > self.best if self.mode == "max" else value < self.best):
                self.best = float(value)

    def update(self, trials) -> None:
        states = [t.status for t in trials]
        done = sum(s in ("TERMINATED", "ERROR") for s in states)
        best = "n/a" if self.best is None else f"{self.best:.3f}"
        text = (
            f"best {self.metric}={best} | running {states.count('RUNNING')} | "
            f"pending {states.count('PENDING')} | "
            f"errors {states.count('ERROR')}"
        )
        self.progress.update(self.task, completed=done, description=text)

    def update_final(self, finished: int) -> None:
        self.progress.update(self.task, completed=finished)

    def __enter__(self):
        _PROGRESS["ser-sweep"] = self
        self.progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.stop()
        _PROGRESS.pop("ser-sweep", None)


def _wandb_callback(plan: SweepPlan, enabled: bool | None):
    use = plan.sweep.wandb.enabled if enabled is None else enabled
    if not use or plan.sweep.wandb.mode == "disabled":
        return None
    from ser.sweep.wandb_log import make_callback

    return make_callback(
        project=plan.sweep.wandb.project,
        group=plan.sweep.wandb.group or plan.sweep.name,
        mode=plan.sweep.wandb.mode,
        base_config=OmegaConf.to_container(plan.base, resolve=True),
    )


def experiment_dir(plan: SweepPlan) -> Path:
    return Path(plan.sweep.storage_path).expanduser().resolve() / plan.sweep.name


def report_sweep(plan: SweepPlan, console: Any = None) -> dict[str, Any]:
    """Rebuild leaderboard, best config/checkpoint and plots from what a sweep left on disk."""
    from ray.tune import ExperimentAnalysis, ResultGrid
    from rich.console import Console

    from ser.sweep.results import summarize_sweep, top_table

    console = console or Console(stderr=True)
    exp_dir = experiment_dir(plan)
    if not exp_dir.is_dir():
        raise ConfigError(f"no sweep results at {exp_dir}")
    grid = ResultGrid(
        ExperimentAnalysis(str(exp_dir), default_metric=plan.sweep.metric, default_mode=plan.sweep.mode)
    )
    summary = summarize_sweep(grid, plan, exp_dir)
    console.print(top_table(summary["rows"], summary["keys"], plan.sweep.metric))
    console.print(f"sweep results: {exp_dir}")
    return {"dir": exp_dir, **summary}


def run_sweep(
    plan: SweepPlan,
    resume: bool = False,
    address: str | None = None,
    wandb: bool | None = None,
    console: Any = None,
) -> dict[str, Any]:
    """Run (or resume) the sweep; write leaderboard, best config/checkpoint and plots; return the summary."""
    _set_ray_env()
    import ray
    from ray import tune
    from rich.console import Console

    from ser.sweep.results import summarize_sweep, top_table

    console = console or Console(stderr=True)
    exp_dir = experiment_dir(plan)
    if resume and not exp_dir.exists():
        raise ConfigError(f"nothing to resume: {exp_dir} does not exist")
    if not resume and exp_dir.exists():
        raise ConfigError(
            f"{exp_dir} already exists: pass --resume to continue that sweep, "
            "or sweep.name=NEW to start another"
        )
    if plan.base.data.corpus != "synthetic" and not plan.base.data.corpora and not plan.base.data.root:
        raise CorpusError(
            f"sweep '{plan.sweep.name}' reads corpus '{plan.base.data.corpus}', which needs data.root=PATH "
            "(e.g. data.root=../shared/data/ravdess-dev-16k), or run it on the built-in corpus with "
            "data.corpus=synthetic"
        )
    if plan.base.wandb.enabled and int(plan.sweep.cv.folds) == 0:
        plan.base.wandb.enabled = False  # the driver's WandbLoggerCallback logs each trial once
    if int(plan.sweep.cv.folds) > 0 and (plan.sweep.wandb.enabled if wandb is None else wandb):
        plan.base.wandb.enabled = True  # one W&B run per fold, grouped by the sweep
        plan.base.wandb.group = plan.sweep.wandb.group or plan.sweep.name
        plan.base.wandb.project = plan.sweep.wandb.project
        plan.base.wandb.mode = plan.sweep.wandb.mode
    started = datetime.now().isoformat(timespec="seconds")
    shared = prepare_shared(plan, console)
    resources = plan.sweep.resources
    ray_address = address or plan.sweep.address
    if not ray.is_initialized():
        ray.init(
            address=ray_address,
            include_dashboard=False,
            configure_logging=True,
            logging_level="ERROR",
            log_to_driver=True,
        )
    sweep_dict = OmegaConf.to_container(plan.sweep, resolve=True)
    base_dict = OmegaConf.to_container(plan.base, resolve=True)
    if int(resources.workers) > 1:  # DDP through Ray Train: the trial drives `workers` worker actors
        from ser.sweep.ddp import ddp_trainable

        trainable = ddp_trainable(base_dict, sweep_dict, shared)
    else:
        trainable = tune.with_parameters(run_trial, base=base_dict, sweep=sweep_dict, prepared=shared)
        trainable = tune.with_resources(trainable, {"cpu": float(resources.cpu), "gpu": float(resources.gpu)})
    total = count_trials(plan)
    progress = SweepProgress(total, plan.sweep.metric, plan.sweep.mode, console)
    callbacks = [_progress_callback()]
    wandb_cb = _wandb_callback(plan, wandb)
    if wandb_cb is not None:
        callbacks.append(wandb_cb)
    run_config = tune.RunConfig(
        name=plan.sweep.name,
        storage_path=str(exp_dir.parent),
        callbacks=callbacks,
        checkpoint_config=tune.CheckpointConfig(num_to_keep=int(plan.sweep.keep_checkpoints)),
        sync_config=tune.SyncConfig(sync_artifacts=True),
        failure_config=tune.FailureConfig(max_failures=0, fail_fast=False),
        verbose=0,
    )
    if resume:
        if not tune.Tuner.can_restore(str(exp_dir)):
            raise ConfigError(f"nothing to resume: {exp_dir} holds no Tune experiment state")
        tuner = tune.Tuner.restore(
            str(exp_dir), trainable=trainable, resume_unfinished=True, resume_errored=False
        )
    else:
        tuner = tune.Tuner(
            trainable,
            param_space=to_tune_space(plan.space, seed=int(plan.sweep.seed)),
            tune_config=tune.TuneConfig(
                metric=plan.sweep.metric,
                mode=plan.sweep.mode,
                scheduler=build_scheduler(plan),
                search_alg=build_searcher(plan),
                num_samples=int(plan.sweep.num_samples),
                max_concurrent_trials=int(plan.sweep.max_concurrent_trials) or None,
            ),
            run_config=run_config,
        )
    with progress:
        result_grid = tuner.fit()
        progress.update_final(sum(1 for r in result_grid if r.metrics and r.metrics.get("done") or r.error))
    if wandb_cb is not None:
        from ser.sweep.wandb_log import wait_for_writers

        wait_for_writers()
    summary = summarize_sweep(result_grid, plan, exp_dir)
    info = {
        "name": plan.sweep.name,
        "source": str(plan.source) if plan.source else None,
        "metric": plan.sweep.metric,
        "mode": plan.sweep.mode,
        "searched_keys": summary["keys"],
        "scheduler": OmegaConf.to_container(plan.sweep.scheduler),
        "searcher": plan.sweep.searcher.name,
        "cv_folds": int(plan.sweep.cv.folds),
        "trials": len(summary["rows"]),
        "epochs_total": int(sum(r["epochs"] for r in summary["rows"])),
        "started": started,
        "finished": datetime.now().isoformat(timespec="seconds"),
        "resumed": resume,
        "space": {k.replace(COND_SEP, " if "): [s, a] for k, (s, a) in plan.space.items()},
    }
    (exp_dir / "sweep.json").write_text(json.dumps(info, indent=2, default=str))
    console.print(top_table(summary["rows"], summary["keys"], plan.sweep.metric))
    unfinished = [r for r in summary["rows"] if r["status"] in ("interrupted", "pending")]
    if unfinished:
        console.print(
            f"[yellow]{len(unfinished)} trial(s) did not finish:[/] run the same command with --resume"
        )
    console.print(f"sweep results: {exp_dir}")
    return {"dir": exp_dir, **summary, "info": info}
