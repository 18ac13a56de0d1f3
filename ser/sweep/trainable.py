"""The Ray Tune trainable: one trial = the same `fit_fold` as `ser fit`, plus reporting to Tune.

Without cross-validation a trial trains one speaker fold and `TuneReportCheckpointCallback` reports each
validation epoch (ASHA decides on it). With `cv.folds = K` the trial trains K folds in lockstep, one
thread each: at every validation epoch the folds meet at a barrier and the trial reports the fold mean
(and sd) of each metric, so ASHA stops on the fold mean rather than on one lucky fold.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import traceback
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lightning.pytorch.callbacks import Callback
from omegaconf import OmegaConf

from ser.config import RootConfig, merge_into
from ser.data.datamodule import PreparedData, prepare_data, resolve_feature_kind, uses_wave_augment
from ser.data.folds import parse_fold
from ser.sweep.spec import apply_params

# validation metrics only: Lightning has not aggregated the epoch's training metrics when validation ends
REPORTED = ("val/uar", "val/wa", "val/f1", "val/loss", "val/uar_best")


# What shapes a prepared array besides the feature kind and waveform mode. `data.features.deltas` is not
# here: the model's front end computes it per batch from the same array.
PREPARED_BY = (
    "corpus",
    "root",
    "speaker_regex",
    "corpora",
    "labels",
    "label_map",
    "folds",
    "val_folds",
    "fold_seed",
    "synthetic",
    "audio",
    "features",
)


def prepared_key(cfg) -> str:
    """Which prepared data a trial config can share: the same kind, mode, corpus, folds, audio and
    feature settings. A sweep over e.g. `data.features.n_mels` gets a new key per value, so its trials
    prepare their own features instead of silently reusing the base config's."""
    data = OmegaConf.to_container(cfg.data, resolve=True)
    settings = {key: data[key] for key in PREPARED_BY}
    settings["features"] = {k: v for k, v in settings["features"].items() if k != "deltas"}
    digest = hashlib.sha1(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:12]
    mode = "wave" if uses_wave_augment(cfg) else "features"
    return f"{resolve_feature_kind(cfg)}|{mode}|{digest}"


def _trial_dir() -> Path:
    from ray import tune

    try:
        return Path(tune.get_context().get_trial_dir())
    except Exception:  # outside Tune (tests calling run_trial directly)
        return Path.cwd()


def _prepared_for(cfg, shared: dict[str, PreparedData]) -> PreparedData:
    key = prepared_key(cfg)
    if key in shared:
        return shared[key]
    return prepare_data(cfg, progress=False)  # other feature settings: computed once via the disk cache


class FoldBarrier(Callback):
    """Meets the other folds of a CV trial after each validation epoch and reports their mean."""

    def __init__(self, group: CVGroup, fold_slot: int) -> None:
        self.group = group
        self.slot = fold_slot

    def on_validation_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking:
            return
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k in REPORTED}
        self.group.arrive(self.slot, metrics)


class CVGroup:
    """Collects one epoch's metrics from every fold thread; the last to arrive reports the mean."""

    def __init__(self, n_folds: int) -> None:
        self.n = n_folds
        self.epoch_metrics: list[dict[str, float]] = [{} for _ in range(n_folds)]
        self.barrier = threading.Barrier(n_folds, action=self._report)
        self.reports: list[dict[str, float]] = []

    def _report(self) -> None:
        from ray import tune

        summary: dict[str, float] = {}
        for key in REPORTED:
            values = [m[key] for m in self.epoch_metrics if key in m]
            if values:
                summary[key] = float(np.mean(values))
                summary[f"{key}_sd"] = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
        for slot, m in enumerate(self.epoch_metrics):
            for key in ("val/uar", "val/loss"):
                if key in m:
                    summary[f"fold{slot}/{key}"] = m[key]
        self.reports.append(summary)
        tune.report(summary)

    def arrive(self, slot: int, metrics: dict[str, float]) -> None:
        self.epoch_metrics[slot] = metrics
        self.barrier.wait()

    def abort(self) -> None:
        self.barrier.abort()


def _run_cv(cfg, prepared: PreparedData, folds: list[int], trial_dir: Path) -> list[dict[str, Any]]:
    from ser.train import fit_fold

    group = CVGroup(len(folds))
    results: list[dict[str, Any] | None] = [None] * len(folds)
    errors: list[BaseException] = []

    def work(slot: int, index: int) -> None:
        try:
            results[slot] = fit_fold(
                cfg, prepared, index, trial_dir / f"fold_{index}", [FoldBarrier(group, slot)]
            )
        except threading.BrokenBarrierError:
            pass  # another fold failed: its error is the trial's error
        except BaseException as exc:  # noqa: BLE001 - re-raised in the trial thread below
            errors.append(exc)
            group.abort()

    threads = [threading.Thread(target=work, args=(s, i), name=f"fold{i}") for s, i in enumerate(folds)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return [r for r in results if r is not None]


def run_trial(
    params: dict[str, Any],
    base: dict[str, Any] | None = None,
    sweep: dict[str, Any] | None = None,
    prepared: dict[str, PreparedData] | None = None,
) -> None:
    """Tune function trainable. Constants (base config, sweep settings, shared features) come through
    `tune.with_parameters`, so the features are placed in the object store once, not once per trial."""
    from ray.tune.integration.pytorch_lightning import TuneReportCheckpointCallback

    from ser.train import fit_fold, summarize

    base_cfg = merge_into(OmegaConf.structured(RootConfig), OmegaConf.create(base or {}), "sweep base")
    cfg = apply_params(base_cfg, params)
    cfg.trainer.progress_bar = False
    cfg.trainer.early_stopping_patience = 0  # the scheduler stops trials
    sweep = sweep or {}
    trial_dir = _trial_dir()
    torch.set_num_threads(max(1, int(float(sweep.get("resources", {}).get("cpu", 1)))))
    data = _prepared_for(cfg, prepared or {})
    (trial_dir / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    n_cv = int(sweep.get("cv", {}).get("folds", 0))
    result_file = trial_dir / "trial_result.json"
    try:
        if n_cv > 0:
            folds = list(range(min(n_cv, len(data.folds))))
            fold_results = _run_cv(cfg, data, folds, trial_dir)
        else:
            index = parse_fold(str(cfg.data.fold), len(data.folds))[0]
            reporter = TuneReportCheckpointCallback(
                metrics=list(REPORTED), filename="checkpoint.ckpt", on="validation_end"
            )
            fold_results = [fit_fold(cfg, data, index, trial_dir / f"fold_{index}", [reporter])]
    except Exception as exc:
        result_file.write_text(json.dumps({"status": "error", "error": f"{type(exc).__name__}: {exc}"}))
        (trial_dir / "error_traceback.txt").write_text(traceback.format_exc())
        raise
    summary = summarize(fold_results)
    result_file.write_text(
        json.dumps(
            {
                "status": "completed",
                "summary": summary,
                "folds": [{k: v for k, v in r.items() if k != "history"} for r in fold_results],
                "pid": os.getpid(),
            },
            indent=2,
        )
    )
