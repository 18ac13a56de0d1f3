"""The sweep driver: features once, then a Ray Tune `Tuner` (ASHA by default), W&B, resume, results.

The driver owns the Tuner, the scheduler, the searcher and the loggers; trials only train. Features are
computed (or read from the disk cache) here, before any trial starts, and handed to every trial through
`tune.with_parameters`, which puts them in Ray's object store once: trials map the same memory.
The console gets one line per trial event (started, stopped, completed, failed) and a progress bar.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
import math
import os
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import OmegaConf

from ser.config import ConfigError
from ser.config.errors import UserError
from ser.data.paths import write_atomic
from ser.data.prepared import PreparedData, prepare_data
from ser.data.types import CorpusError
from ser.sweep.progress import SweepProgress
from ser.sweep.schedulers import build_scheduler, build_searcher
from ser.sweep.spec import COND_SEP, SweepPlan, apply_params, count_trials, to_tune_space
from ser.sweep.trials import prepared_key, run_trial


def _set_ray_env() -> None:
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    os.environ.setdefault("WANDB_SILENT", "true")


MAX_VARIANT_COMBINATIONS = 64

# Ray also copies a trial's folder to storage in the background, after its first report and then every
# sync_period, while the trial goes on writing: a file renamed or deleted mid-copy (an atomic write's
# temporary, a replaced best checkpoint) fails the trial at its next report with FileNotFoundError.
# Checkpointed reports and the trial's end copy the folder anyway, so the periodic copies are turned
# off; the one after the first report stays (Ray's clock starts there), which is why a trial keeps its
# per-epoch training state outside the folder (ser.sweep.trials.run_trial).
NO_BACKGROUND_SYNC_S = 10**9


def _point(key: str, value: Any) -> dict[str, Any]:
    """Sampled params setting `key` (a conditional key with its condition met)."""
    if COND_SEP not in key:
        return {key: value}
    cond_key, cond_value = key.split(COND_SEP, 1)[0].split("=", 1)
    return {cond_key: cond_value, key: value}


def _variants(plan: SweepPlan) -> list[Any]:
    """One config per distinct prepared array the trials can draw: every combination of the searched
    choice/grid values that change what is prepared (the model family, an ssl head's pooling, the
    encoder, ...). Others a trial meets (continuous ranges) are prepared by the trial from the disk cache."""

    def key_of(params: dict[str, Any]) -> str | None:
        try:
            return prepared_key(apply_params(plan.base, params))
        except ConfigError:  # a combination no trial can draw
            return None

    base_key = prepared_key(plan.base)
    shaping: list[list[dict[str, Any]]] = []
    for key, (sampler, args) in plan.space.items():
        if sampler in ("choice", "grid"):
            points = [_point(key, value) for value in args]
            if {key_of(p) for p in points} - {base_key, None}:
                shaping.append(points)
    if math.prod(len(points) for points in shaping) > MAX_VARIANT_COMBINATIONS:
        combos = [p for points in shaping for p in points]  # each value alone, not every combination
    else:
        combos = [{k: v for part in parts for k, v in part.items()} for parts in itertools.product(*shaping)]
    seen, configs = set(), []
    for params in combos:
        key = key_of(params)
        if key is not None and key not in seen:
            seen.add(key)
            configs.append(apply_params(plan.base, params))
    return configs or [plan.base]


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
        held = f", {len(data.held_out)} held-out test speakers excluded" if data.held_out else ""
        console.print(
            f"features [bold]{data.kind}[/]{served}: {len(data.y)} utterances, "
            f"{len(set(data.speakers))} speakers, {len(data.labels)} labels, {len(data.folds)} folds{held} "
            f"({origin}, {time.perf_counter() - start:.1f} s)"
        )
        for item in data.skipped:
            console.print(f"  [yellow]skipped[/] {item.path}: {item.reason}")
        for message in data.warnings:
            console.print(f"  [yellow]warning:[/] {message}")
    return shared


def cv_execution(plan: SweepPlan) -> list[str]:
    """How the trials of a CV sweep train their folds, per model family: fused into one model
    (ser.training.fused) or in lockstep threads, and why a family falls back."""
    folds = int(plan.sweep.cv.folds)
    if folds < 2:
        return []
    from ser.training.fuse_decision import decide

    names = [plan.base.model.name]
    sampler, args = plan.space.get("model.name", (None, None))
    if sampler in ("choice", "grid"):
        names = list(args)
    device = "cuda" if float(plan.sweep.resources.gpu) > 0 else "cpu"
    lines = []
    for name in names:
        decision = decide(apply_params(plan.base, {"model.name": name}), folds, device_type=device)
        how = {
            "fused": "as one fused model",
            "lockstep": "in lockstep in one loop, one network after another (fused on a GPU)",
            "per-model": "in lockstep threads, one Lightning loop each",
        }[decision.mode]
        if decision.note:
            how += f" ({decision.note})"
        lines.append(f"cv: {name} trials train their {folds} folds {how}")
    return lines


class RayStartError(UserError):
    """Ray could not start or connect: one line saying what failed and what to try, not its traceback."""


def start_ray(address: str | None) -> None:
    """`ray.init` for the driver, its failure (a busy machine timing the node out, a cluster address
    nobody answers at, a full /tmp) as a `RayStartError`."""
    import ray

    if ray.is_initialized():
        return
    try:
        ray.init(
            address=address,
            include_dashboard=False,
            configure_logging=True,
            logging_level="ERROR",
            log_to_driver=False,  # trial output stays in each trial's folder: one console line per event
        )
    except (KeyboardInterrupt, UserError):
        raise
    except Exception as exc:  # Ray raises bare Exception, RuntimeError, ConnectionError, ValueError
        reason = " ".join(str(exc).split()) or type(exc).__name__
        if address:
            hint = (
                f"check that a Ray cluster is running at {address!r} (`ray status`), or leave --address "
                "out to start a local one"
            )
        else:
            hint = (
                "the machine may be too busy or short of memory or /tmp space for Ray's processes: try "
                "again when it is less loaded, or start Ray once (`ray start --head`) and pass --address auto"
            )
        raise RayStartError(f"Ray could not start ({reason[:300]}); {hint}") from None


def check_resources(plan: SweepPlan) -> None:
    """A trial (or DDP worker) no node can host would wait forever: refuse it now, naming the numbers."""
    import ray

    res = plan.sweep.resources
    cpu, gpu = float(res.cpu), float(res.gpu)
    nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]
    if any(n.get("CPU", 0) >= cpu and n.get("GPU", 0) >= gpu for n in nodes):
        return
    most_cpu = max((n.get("CPU", 0) for n in nodes), default=0)
    most_gpu = max((n.get("GPU", 0) for n in nodes), default=0)
    who = "each DDP worker" if int(res.workers) > 1 else "each trial"
    raise ConfigError(
        f"invalid sweep key 'resources': {who} asks for {cpu:g} CPU and {gpu:g} GPU, but the largest node "
        f"has {most_cpu:g} CPU and {most_gpu:g} GPU; lower sweep.resources.cpu / sweep.resources.gpu"
    )


def _wandb_callback(plan: SweepPlan, enabled: bool | None):
    if not wandb_enabled(plan, enabled):
        return None
    from ser.sweep.callbacks import WandbTrials

    return WandbTrials(
        project=plan.sweep.wandb.project,
        group=plan.sweep.wandb.group or plan.sweep.name,
        mode=plan.sweep.wandb.mode,
        base=OmegaConf.to_container(plan.base, resolve=True),
    )


def wandb_enabled(plan: SweepPlan, enabled: bool | None) -> bool:
    use = plan.sweep.wandb.enabled if enabled is None else enabled
    return bool(use) and plan.sweep.wandb.mode != "disabled"


def experiment_dir(plan: SweepPlan) -> Path:
    return Path(plan.sweep.storage_path).expanduser().resolve() / plan.sweep.name


def _result_grid(plan: SweepPlan, exp_dir: Path):
    from ray.tune import ExperimentAnalysis, ResultGrid

    return ResultGrid(
        ExperimentAnalysis(str(exp_dir), default_metric=plan.sweep.metric, default_mode=plan.sweep.mode)
    )


def report_sweep(plan: SweepPlan, console: Any = None, show_test: bool = False) -> dict[str, Any]:
    """Rebuild leaderboard, best config/checkpoint and plots from what a sweep left on disk."""
    from rich.console import Console

    from ser.sweep.results import summarize_sweep, top_table

    console = console or Console(stderr=True)
    exp_dir = experiment_dir(plan)
    if not exp_dir.is_dir():
        raise ConfigError(f"no sweep results at {exp_dir}")
    summary = summarize_sweep(_result_grid(plan, exp_dir), plan, exp_dir, show_test=show_test)
    console.print(top_table(summary["rows"], summary["keys"], plan.sweep.metric))
    print_conclusions(summary, plan, console)
    console.print(f"sweep results: {exp_dir}")
    return {"dir": exp_dir, **summary}


def _unfinished(summary: dict[str, Any], plan: SweepPlan) -> bool:
    """Trials left for --resume: the confirmation stage waits for the whole search."""
    started = [r for r in summary["rows"] if r["status"] in ("interrupted", "pending")]
    return bool(started) or len(summary["rows"]) < count_trials(plan)


def print_conclusions(summary: dict[str, Any], plan: SweepPlan, console: Any) -> None:
    """The tied group, how the best was chosen, the confirmation's scores beside the search's."""
    from ser.sweep.conclusions import conclusion_lines

    for line in conclusion_lines(summary, plan):
        console.print(line)


def _check_can_start(plan: SweepPlan, exp_dir: Path, resume: bool) -> None:
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
            "(where the corpus was unpacked; see README), or run it on the built-in corpus with "
            "data.corpus=synthetic"
        )


def _check_encoder(plan: SweepPlan) -> None:
    """The base config's pretrained encoder is found (a folder, a file, the hub cache) before Ray starts,
    so a sweep without its weights stops at once with the line saying how to get them. A sweep that
    searches the encoder or the family is checked where its trials' features are prepared instead."""
    model = plan.base.model
    uses = str(model.name) == "ssl" or (str(model.fusion) != "none" and str(model.fusion_view) == "encoder")
    searched = set(plan.searched_keys)
    if not uses or not model.encoder or searched & {"model.name", "model.encoder", "model.fusion_view"}:
        return
    from ser.data.encoders.source import resolve_encoder

    resolve_encoder(str(model.encoder), model.encoder_revision, plan.base.data.features.cache_dir)


def run_sweep(
    plan: SweepPlan,
    resume: bool = False,
    address: str | None = None,
    wandb: bool | None = None,
    console: Any = None,
    show_test: bool = False,
) -> dict[str, Any]:
    """Run (or resume) the sweep; write leaderboard, best config/checkpoint and plots; return the summary
    (`interrupted` is True when trials are left for `--resume`)."""
    from rich.console import Console

    console = console or Console(stderr=True)
    exp_dir = experiment_dir(plan)
    _check_can_start(plan, exp_dir, resume)  # before Ray is imported: a wrong name or --resume fails at once
    _check_encoder(plan)  # a missing pretrained encoder, too (Ray's start-up is seconds here)
    _set_ray_env()
    from ray import tune

    from ser.sweep.results import summarize_sweep, top_table

    plan.base.wandb.enabled = False  # trials do not log: the driver writes one live run per trial
    started = datetime.now().isoformat(timespec="seconds")
    start_ray(address or plan.sweep.address)  # before the features: a Ray or resources problem fails fast
    check_resources(plan)
    shared = prepare_shared(plan, console)
    for line in cv_execution(plan):
        console.print(line)
    resources = plan.sweep.resources
    sweep_dict = OmegaConf.to_container(plan.sweep, resolve=True)
    base_dict = OmegaConf.to_container(plan.base, resolve=True)
    if int(resources.workers) > 1:  # DDP through Ray Train: the trial drives `workers` worker actors
        from ser.sweep.ddp import ddp_trainable

        trainable = ddp_trainable(base_dict, sweep_dict, shared)
    else:
        trainable = tune.with_parameters(run_trial, base=base_dict, sweep=sweep_dict, prepared=shared)
        trainable = tune.with_resources(trainable, {"cpu": float(resources.cpu), "gpu": float(resources.gpu)})
    total = count_trials(plan)
    progress = SweepProgress(
        total, plan.sweep.metric, plan.sweep.mode, int(plan.sweep.scheduler.max_t), console
    )
    from ser.sweep.callbacks import ProgressCallback

    callbacks = [ProgressCallback()]
    wandb_cb = _wandb_callback(plan, wandb)
    if wandb_cb is not None:
        callbacks.append(wandb_cb)
    run_config = tune.RunConfig(
        name=plan.sweep.name,
        storage_path=str(exp_dir.parent),
        callbacks=callbacks,
        checkpoint_config=tune.CheckpointConfig(num_to_keep=int(plan.sweep.keep_checkpoints)),
        # trial folders (metrics, fold outputs) reach storage at each checkpointed report and at the
        # trial's end, while the trial waits for the copy (see NO_BACKGROUND_SYNC_S)
        sync_config=tune.SyncConfig(sync_artifacts=True, sync_period=NO_BACKGROUND_SYNC_S),
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
            tune_config=tune.TuneConfig(  # the scheduler compares RUNG_KEY, the searcher the metric
                scheduler=build_scheduler(plan.sweep),
                search_alg=build_searcher(plan.sweep, plan.space),
                num_samples=int(plan.sweep.num_samples),
                max_concurrent_trials=int(plan.sweep.max_concurrent_trials) or None,
                # a trial's process (interpreter, torch, Lightning: seconds on a small CPU) serves the
                # next trial of the same resources: ASHA's short stopped trials pay it once
                reuse_actors=True,
            ),
            run_config=run_config,
        )
    quiet = [logging.getLogger(name) for name in ("ray.tune", "ray.air", "ray.train")]
    levels = [logger.level for logger in quiet]
    for logger in quiet:  # Ray logs each failed trial's wrapped traceback: the trial's line says it
        logger.setLevel(logging.CRITICAL)
    try:
        with progress:
            result_grid = tuner.fit()
    finally:
        for logger, level in zip(quiet, levels):
            logger.setLevel(level)
    summary = summarize_sweep(result_grid, plan, exp_dir, show_test=show_test)
    if int(plan.sweep.confirm.top_k) > 0 and not _unfinished(summary, plan):
        from ser.sweep.confirm import run_confirmation

        console.print(
            f"confirmation: the top {plan.sweep.confirm.top_k} configs x {plan.sweep.confirm.seeds} new seeds"
        )
        run_confirmation(plan, summary["rows"], shared, exp_dir, console)
        summary = summarize_sweep(result_grid, plan, exp_dir, show_test=show_test)
    info = {
        "name": plan.sweep.name,
        "source": str(plan.source.resolve()) if plan.source else None,
        "overrides": list(plan.overrides),
        "metric": plan.sweep.metric,
        "mode": plan.sweep.mode,
        "searched_keys": summary["keys"],
        "scheduler": OmegaConf.to_container(plan.sweep.scheduler),
        "rungs": summary["rungs"],
        "searcher": plan.sweep.searcher.name,
        "cv_folds": int(plan.sweep.cv.folds),
        "trials": len(summary["rows"]),
        "epochs_total": int(sum(r["epochs"] for r in summary["rows"])),
        "started": started,
        "finished": datetime.now().isoformat(timespec="seconds"),
        "resumed": resume,
        "space": {k.replace(COND_SEP, " if "): [s, a] for k, (s, a) in plan.space.items()},
        "rung_metric": str(plan.sweep.rung_metric),
        "confirm": OmegaConf.to_container(plan.sweep.confirm),
        "chosen_by": summary.get("chosen_by"),
        "best_trial": summary["best"]["trial_id"] if summary.get("best") else None,
        "statistics_seconds": (summary.get("statistics") or {}).get("seconds"),
        "confirmation_seconds": (summary.get("confirmation") or {}).get("seconds"),
    }
    write_atomic(exp_dir / "sweep.json", json.dumps(info, indent=2, default=str))
    if wandb_cb is not None:
        from ser.sweep.results import BOARD_COLUMNS, LEADERBOARD_COLUMNS
        from ser.sweep.wandb_log import write_summary_run

        columns = [*LEADERBOARD_COLUMNS, *summary["keys"], *BOARD_COLUMNS]
        group = plan.sweep.wandb.group or plan.sweep.name
        write_summary_run(
            plan.sweep.wandb.project,
            group,
            plan.sweep.wandb.mode,
            exp_dir,
            summary["rows"],
            columns,
            conclusions=summary,
        )
    console.print(top_table(summary["rows"], summary["keys"], plan.sweep.metric))
    print_conclusions(summary, plan, console)
    interrupted = sum(r["status"] == "interrupted" for r in summary["rows"])
    pending = sum(r["status"] == "pending" for r in summary["rows"])  # the board lists every trial
    left = interrupted + pending
    if left:
        console.print(
            f"[yellow]{left} trial(s) did not finish[/] ({interrupted} interrupted, {pending} pending, "
            "never started): run the same command with --resume to continue them"
        )
    console.print(f"sweep results: {exp_dir}")
    return {"dir": exp_dir, **summary, "info": info, "interrupted": bool(left)}
