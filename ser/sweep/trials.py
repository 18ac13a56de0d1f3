"""The Ray Tune trainable: a trial trains through the same `train_fold` as `ser fit`, and reports each
epoch to Tune with a checkpoint to resume from.

Without cross-validation a trial trains one speaker fold. With `cv.folds = K` it trains K folds in
lockstep: as one fused model (ser.training.fused: `trainer.fused=auto` on a GPU, `always` wherever the
family fuses), or one Lightning loop per fold in its own thread. After every validation epoch the trial
reports the fold mean (and sd) of each metric, so ASHA stops on the fold mean rather than on one lucky
fold; the trial's metrics.json says which way its folds trained (`execution`) and why fusion was not used.

Each report carries the full training state of every fold (weights, optimizer, weight average, epoch,
random generators, history), so `--resume` continues an interrupted trial where it stopped and its
per-epoch curve is the one an uninterrupted run gives. The trial writes `metrics.json` (the `ser fit`
schema) when it ends, `status: error` with the error when it fails.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf

from ser.config import MODEL_INPUTS, RootConfig, merge_into
from ser.data.folds import parse_fold
from ser.data.paths import write_atomic
from ser.data.prepared import PreparedData, prepare_data, resolve_feature_kind, serves_waveforms
from ser.data.views import needs_views
from ser.sweep.schedulers import RungTracker
from ser.sweep.spec import apply_params
from ser.training.result import FoldResult, write_metrics

REPORTED = ("val/uar", "val/wa", "val/f1", "val/loss")  # the metrics a sweep may rank by (trainer.monitor)
EPOCH = "epoch"  # reported with every result: epochs trained (1-based), equal to Tune's iteration
RESUME_PREFIX = "fold_"

# What shapes a prepared array besides the feature kind and waveform mode. `data.features.deltas` is not
# here: the model's front end computes it per batch from the same array.
PREPARED_BY = (
    "corpus",
    "root",
    "speaker_regex",
    "subset",
    "corpora",
    "labels",
    "label_map",
    "folds",
    "val_folds",
    "fold_seed",
    "fold_by",
    "partition",
    "synthetic",
    "audio",
    "features",
    "holdout",
)


def prepared_key(cfg: DictConfig) -> str:
    """Which prepared data a trial config can share: the same kind, mode, corpus, folds, audio and
    feature settings. A sweep over e.g. `data.features.n_mels` gets a new key per value, so its trials
    prepare their own features instead of silently reusing the base config's."""
    data = OmegaConf.to_container(cfg.data, resolve=True)
    settings = {key: data[key] for key in PREPARED_BY}
    settings["features"] = {k: v for k, v in settings["features"].items() if k != "deltas"}
    if MODEL_INPUTS[cfg.model.name] == "pretrained":  # another encoder, mode or pooled form: other rows
        from ser.data.embeddings import encoder_settings

        settings["encoder"] = encoder_settings(cfg)
    if needs_views(cfg):  # packed rows: fusion's second view (early and late share it), the speaker column
        fused = cfg.model.fusion != "none"
        views = {"view": cfg.model.fusion_view if fused else None, "speaker": cfg.model.adversary_weight > 0}
        if fused and cfg.model.fusion_view == "encoder":
            views["encoder"] = [cfg.model.encoder, cfg.model.encoder_revision, cfg.model.ssl_cache_dtype]
        settings["views"] = views
    digest = hashlib.sha1(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:12]
    kind = resolve_feature_kind(cfg)
    mode = "wave" if serves_waveforms(cfg, kind) else "features"
    return f"{kind}|{mode}|{digest}"


def trial_config(params: dict[str, Any], base: dict[str, Any]) -> DictConfig:
    """The trial's resolved config: base + sampled params; the scheduler, not early stopping, ends it."""
    base_cfg = merge_into(OmegaConf.structured(RootConfig), OmegaConf.create(base), "sweep base")
    cfg = apply_params(base_cfg, params)
    cfg.trainer.progress_bar = False
    cfg.trainer.early_stopping_patience = 0
    return cfg


def trial_dir() -> Path:
    from ray import tune

    try:
        return Path(tune.get_context().get_trial_dir())
    except Exception:  # outside Tune (tests calling run_trial directly)
        return Path.cwd()


def prepared_for(cfg: DictConfig, shared: dict[str, PreparedData]) -> PreparedData:
    key = prepared_key(cfg)
    if key in shared:
        return shared[key]
    return prepare_data(cfg, progress=False)  # other feature settings: computed once via the disk cache


def restored_checkpoints(scratch: Path) -> dict[int, Path]:
    """fold index -> the fold's last training state, from the checkpoint Tune hands a resumed trial."""
    from ray import tune

    checkpoint = tune.get_checkpoint()
    if checkpoint is None:
        return {}
    local = Path(checkpoint.to_directory(str(scratch / "restored")))
    return {int(p.stem[len(RESUME_PREFIX) :]): p for p in local.glob(f"{RESUME_PREFIX}*.ckpt")}


class EpochReporter:
    """Collects one epoch from every fold of the trial and reports the fold means to Tune with a directory
    holding every fold's training state. Folds in threads meet at a barrier; a fused run calls every
    fold's hook in its one thread and then `epoch_end`."""

    def __init__(
        self,
        folds: list[int],
        scratch: Path,
        report: Callable[..., None] | None = None,
        rung: RungTracker | None = None,
    ) -> None:
        self.folds = folds
        self.rung = rung  # adds the rung score (schedulers.RUNG_KEY) of the fold-mean curve to each report
        self.scratch = scratch
        self.metrics: dict[int, dict[str, float]] = {}
        self.barrier: threading.Barrier | None = threading.Barrier(len(folds), action=self._report)
        self.epoch = 0
        self._report_fn = report
        self.reports: list[dict[str, float]] = []

    def state_dir(self, epoch: int) -> Path:
        return self.scratch / f"epoch_{epoch:04d}"

    def hook(self, fold: int) -> Callable[[int, dict[str, float], Any], None]:
        def arrive(epoch: int, metrics: dict[str, float], trainer: Any) -> None:
            if trainer is not None:  # torch models: their full training state, to resume from
                trainer.save_checkpoint(
                    self.state_dir(epoch) / f"{RESUME_PREFIX}{fold}.ckpt", weights_only=False
                )
            self.metrics[fold] = metrics
            self.epoch = epoch
            if self.barrier is not None:
                self.barrier.wait()

        return arrive

    def in_one_thread(self) -> None:
        """A fused run calls every fold's hook from its one thread, then `epoch_end`: no barrier."""
        self.barrier = None

    def epoch_end(self, epoch: int) -> None:
        """A fused run's every fold has arrived (in this thread): report the epoch."""
        self.epoch = epoch
        self._report()

    def summary(self) -> dict[str, float]:
        out: dict[str, float] = {EPOCH: self.epoch + 1}
        keys = sorted({k for m in self.metrics.values() for k in m})
        for key in keys:
            values = [m[key] for m in self.metrics.values() if key in m]
            out[key] = float(np.mean(values))
            if len(self.folds) > 1:
                out[f"{key}_sd"] = float(np.std(values, ddof=1))
        if len(self.folds) > 1:
            for fold, m in sorted(self.metrics.items()):
                for key in ("val/uar", "val/loss"):
                    if key in m:
                        out[f"fold{fold}/{key}"] = m[key]
        return out

    def _report(self) -> None:
        from ray import tune

        summary = self.summary()
        if self.rung is not None:
            summary = self.rung.add(summary)
        self.reports.append(summary)
        state = self.state_dir(self.epoch)
        if self._report_fn is not None:
            self._report_fn(summary)
        elif state.is_dir():
            tune.report(summary, checkpoint=tune.Checkpoint.from_directory(str(state)))
        else:
            tune.report(summary)
        shutil.rmtree(state, ignore_errors=True)  # Tune has persisted its copy

    def abort(self) -> None:
        if self.barrier is not None:
            self.barrier.abort()


def train_folds_in_lockstep(
    cfg: DictConfig,
    data: PreparedData,
    folds: list[int],
    out_dir: Path,
    reporter: EpochReporter,
    resume: dict[int, Path],
    execution: dict[str, Any] | None = None,
) -> list[FoldResult]:
    """The trial's folds in lockstep, reporting each epoch: fused into one model where `trainer.fused`
    says so (ser.training.fuse_decision.decide), else every fold in its own thread through `train_fold`,
    meeting at the reporter's barrier. `execution` (if given) receives the path taken and the fallback
    note."""
    from ser.training.fold import train_fold
    from ser.training.fuse_decision import decide
    from ser.training.fused import train_folds_fused

    decision = decide(cfg, len(folds), resume)
    mode = decision.mode if decision.fused else ("threads" if len(folds) > 1 else "single")
    if execution is not None:
        execution.update(mode=mode, note=decision.note)
    if decision.note:
        print(f"note: {decision.note}", file=sys.stderr)
    if decision.fused:
        reporter.in_one_thread()
        hooks = {index: reporter.hook(index) for index in folds}
        return train_folds_fused(
            cfg,
            data,
            folds,
            out_dir,
            on_epoch=hooks,
            after_epoch=reporter.epoch_end,
            resume=resume,
            fuse_network=decision.fuse_network,
        )

    def train(index: int) -> FoldResult:
        return train_fold(
            cfg,
            data,
            index,
            out_dir / f"fold_{index}",
            on_epoch=reporter.hook(index),
            resume_from=resume.get(index),
        )

    if len(folds) == 1:  # no thread needed
        return [train(folds[0])]
    results: dict[int, FoldResult] = {}
    errors: list[BaseException] = []

    def work(index: int) -> None:
        try:
            results[index] = train(index)
        except threading.BrokenBarrierError:
            pass  # another fold failed: its error is the trial's error
        except BaseException as exc:  # noqa: BLE001 - re-raised in the trial thread below
            errors.append(exc)
            reporter.abort()

    threads = [threading.Thread(target=work, args=(i,), name=f"fold{i}") for i in folds]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return [results[i] for i in folds]


def trial_folds(cfg: DictConfig, data: PreparedData, cv_folds: int) -> list[int]:
    if cv_folds > 0:
        return list(range(min(cv_folds, len(data.folds))))
    return parse_fold(str(cfg.data.fold), len(data.folds))[:1]


def run_trial(
    params: dict[str, Any],
    base: dict[str, Any] | None = None,
    sweep: dict[str, Any] | None = None,
    prepared: dict[str, PreparedData] | None = None,
) -> None:
    """Tune function trainable. Constants (base config, sweep settings, shared features) come through
    `tune.with_parameters`, so the features are placed in the object store once, not once per trial."""
    import torch

    start = time.perf_counter()
    sweep = sweep or {}
    cfg = trial_config(params, base or {})
    out = trial_dir()
    torch.set_num_threads(max(1, int(float(sweep.get("resources", {}).get("cpu", 1)))))
    data = prepared_for(cfg, prepared or {})
    write_atomic(out / "config.yaml", OmegaConf.to_yaml(cfg, resolve=True))
    folds = trial_folds(cfg, data, int(sweep.get("cv", {}).get("folds", 0)))
    # the per-epoch training state is written, handed to Tune and deleted outside the trial folder: Ray
    # copies that folder to storage in the background after a report, and a file deleted mid-copy
    # failed the trial at its next report (FileNotFoundError from Ray's syncer)
    with tempfile.TemporaryDirectory(prefix="ser-trial-") as scratch:
        resume = restored_checkpoints(Path(scratch))
        reporter = EpochReporter(folds, Path(scratch), rung=RungTracker.from_sweep(sweep))
        execution: dict[str, Any] = {}
        try:
            results = train_folds_in_lockstep(cfg, data, folds, out, reporter, resume, execution)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            write_trial_metrics(out, cfg, data, [], start, error=error, execution=execution)
            (out / "error_traceback.txt").write_text(traceback.format_exc())
            raise
    write_trial_metrics(out, cfg, data, results, start, execution=execution)


def write_trial_metrics(
    out: Path,
    cfg: DictConfig,
    data: PreparedData,
    folds: list[FoldResult],
    start: float,
    error: str | None = None,
    execution: dict[str, Any] | None = None,
) -> None:
    """The trial's metrics.json: the `ser fit` schema, with `status` completed or error."""
    from ser.training.fit import fold_metrics  # the trial's process: Lightning is loaded there already

    metrics = fold_metrics(
        cfg,
        data,
        folds,
        time.perf_counter() - start,
        status="error" if error else "completed",
        error=error,
        extra={"execution": dict(execution)} if execution else None,
    )
    write_metrics(out / "metrics.json", metrics)
