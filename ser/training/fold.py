"""`train_fold`: the one fold trainer. `ser fit`, every sweep trial (single, CV, DDP) and the SVM baseline
train a fold here and get the same `FoldResult`.

Selection looks at validation only: the checkpoint kept is the best epoch by `trainer.monitor`, early
stopping watches the same metric, and the test split is scored once, on that checkpoint.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from lightning.pytorch.callbacks import Callback, EarlyStopping, ModelCheckpoint
from lightning.pytorch.loggers import WandbLogger
from omegaconf import DictConfig

from ser.config import ConfigError, monitor_mode
from ser.data.datamodule import SERDataModule
from ser.data.folds import Fold
from ser.data.prepared import PreparedData
from ser.models.averaging import weight_averaging
from ser.models.pipeline import build_classifier
from ser.models.registry import count_parameters, get_spec
from ser.training.callbacks import EpochEnd, EpochHook, History, PipelineInfo
from ser.training.parts import (
    BEST,
    build_fold_model,
    checkpoint_info,
    fold_loggers,
    fold_seed,
    plot_fold_confusion,
    write_test_predictions,
    write_val_predictions,
)
from ser.training.result import FoldResult, Selection, best_of
from ser.training.trainer import Distributed, make_trainer


def train_fold(
    cfg: DictConfig,
    prepared: PreparedData,
    fold_index: int,
    fold_dir: Path,
    *,
    callbacks: Sequence[Callback] = (),
    on_epoch: EpochHook | None = None,
    resume_from: str | Path | None = None,
    distributed: Distributed | None = None,
    wandb_name: str | None = None,
    write_plots: bool = True,
    fold: Fold | None = None,
) -> FoldResult:
    """Train fold `fold_index` (or the given `fold`, e.g. the final held-out split), resuming from a saved
    training state when given, and test its best checkpoint once (when the fold has a test split: CV folds
    with held-out speakers have none)."""
    start = time.perf_counter()
    fold_dir.mkdir(parents=True, exist_ok=True)
    dm = SERDataModule(cfg, prepared, fold_index, fold=fold)
    metric = str(cfg.trainer.monitor)
    mode = monitor_mode(metric)
    if not get_spec(cfg.model.name).is_torch:
        return _train_svm_fold(cfg, dm, fold_dir, start, on_epoch, write_plots)
    if int(cfg.model.ensemble) > 1:
        if on_epoch is not None or resume_from is not None or distributed is not None:
            raise ConfigError(
                "invalid config key 'model.ensemble': ensembles are for final runs (ser fit, ser holdout), "
                "not sweep trials: their members train one after another"
            )
        return _train_ensemble_fold(cfg, prepared, dm, fold_dir, start, write_plots)
    model, feature_shape = build_fold_model(cfg, prepared, dm)
    history = History()
    best = ModelCheckpoint(
        dirpath=fold_dir, filename=BEST, monitor=metric, mode=mode, save_top_k=1, enable_version_counter=False
    )
    fold_callbacks: list[Callback] = [
        history,
        best,
        PipelineInfo(checkpoint_info(cfg, prepared, dm, feature_shape)),
        *weight_averaging(cfg.optim.ema_decay),
    ]
    if cfg.trainer.early_stopping_patience > 0:
        fold_callbacks.append(
            EarlyStopping(metric, mode=mode, patience=int(cfg.trainer.early_stopping_patience))
        )
    if on_epoch is not None:
        fold_callbacks.append(EpochEnd(on_epoch))
    loggers = fold_loggers(
        cfg, fold_dir, wandb_name or f"{fold_dir.parent.name}-fold{fold_index}", fold_dir.parent.name
    )
    run = next((lg for lg in loggers if isinstance(lg, WandbLogger)), None)
    trainer = make_trainer(
        cfg, fold_dir, [*fold_callbacks, *callbacks], logger=loggers, distributed=distributed
    )
    try:
        trainer.fit(model, datamodule=dm, ckpt_path=str(resume_from) if resume_from else None)
        best_path = best.best_model_path or None
        if dm.has_test:
            trainer.test(model, datamodule=dm, ckpt_path=best_path, verbose=False, weights_only=False)
    finally:
        if run is not None:
            run.experiment.finish()  # this fold's run only (not wandb.finish(): other folds' threads)
    test = dict(model.test_results) if dm.has_test else None
    value, epoch = best_of(history.epochs, metric, mode)
    result = FoldResult(
        fold=fold_index,
        speakers=dm.split_speakers(),
        sizes=dm.split_sizes(),
        test=test,
        selection=Selection(metric=metric, mode=mode, best=value, epoch=epoch),
        epochs=len(history.epochs),
        parameters=count_parameters(model.net),
        wall_seconds=time.perf_counter() - start,
        checkpoint=str(best_path) if best_path else None,
        history=history.epochs,
        warnings=list(dm.fold.warnings),
        world_size=trainer.world_size,
    )
    if trainer.is_global_zero and test is not None:
        write_test_predictions(model, prepared, dm, fold_dir)
        write_val_predictions(model, prepared, dm, fold_dir)
    if write_plots and trainer.is_global_zero and test is not None:
        plot_fold_confusion(test, fold_dir, fold_index)
    return result


ENSEMBLE_SEED_STRIDE = 1000  # member m of fold k trains with seed trainer.seed + 1000 m + k


def member_config(cfg: DictConfig, member: int) -> DictConfig:
    """Member `member` of an ensemble: one network, its own seed (member 0 = the single model's seed)."""
    member_cfg = cfg.copy()
    member_cfg.model.ensemble = 1
    member_cfg.trainer.seed = int(cfg.trainer.seed) + ENSEMBLE_SEED_STRIDE * member
    return member_cfg


def _train_ensemble_fold(
    cfg: DictConfig,
    prepared: PreparedData,
    dm: SERDataModule,
    fold_dir: Path,
    start: float,
    write_plots: bool,
) -> FoldResult:
    """Train `model.ensemble` members one by one (each checkpoint chosen on validation), then score the
    average of their probabilities on validation (its value is the fold's selection value) and test, and
    save it as one ordinary checkpoint that every command loads."""
    import torch

    from ser.training.fuse_decision import decide
    from ser.training.fused import train_seeds_fused

    count = int(cfg.model.ensemble)
    decision = decide(member_config(cfg, 0), count)
    if decision.fused and decision.fuse_network:  # a GPU: the members as one fused model, about one's cost
        seeds = [int(member_config(cfg, m).trainer.seed) for m in range(count)]
        members = train_seeds_fused(
            member_config(cfg, 0), prepared, seeds, fold_dir, dm.fold_index, split=dm.fold, write_plots=False
        )
    else:  # a CPU (where fusing measured no faster) or a family without a fused form: one after another
        members = [
            train_fold(
                member_config(cfg, m),
                prepared,
                dm.fold_index,
                fold_dir / f"member_{m}",
                fold=dm.fold,
                write_plots=False,
            )
            for m in range(count)
        ]
    model, feature_shape = build_classifier(
        cfg,
        dm.row_shape,
        prepared.labels,
        prepared.kind,
        prepared.waveform_mode,
        seed=fold_seed(cfg, dm.fold_index),
    )
    state: dict[str, Any] = {}
    for m, member in enumerate(members):
        weights = torch.load(member.checkpoint, map_location="cpu", weights_only=True)["state_dict"]
        for key, value in weights.items():
            if key.startswith("net."):
                state[f"net.members.{m}.{key[len('net.') :]}"] = value
            elif m == 0:  # the front end's fitted statistics (the same training split for every member)
                state[key] = value
    model.load_state_dict(state, strict=True)
    scorer = make_trainer(
        cfg, fold_dir, [PipelineInfo(checkpoint_info(cfg, prepared, dm, feature_shape))], training=False
    )
    scorer.validate(model, datamodule=dm, verbose=False)
    metric, mode = str(cfg.trainer.monitor), monitor_mode(str(cfg.trainer.monitor))
    value = float(model.val_results[metric.split("/", 1)[1]])
    test = None
    if dm.has_test:
        scorer.test(model, datamodule=dm, verbose=False)
        test = dict(model.test_results)
        write_test_predictions(model, prepared, dm, fold_dir)
    best_path = fold_dir / f"{BEST}.ckpt"
    scorer.save_checkpoint(best_path)  # (weights_only would skip the callbacks that store the pipeline facts)
    if write_plots and test is not None:
        plot_fold_confusion(test, fold_dir, dm.fold_index)
    return FoldResult(
        fold=dm.fold_index,
        speakers=dm.split_speakers(),
        sizes=dm.split_sizes(),
        test=test,
        selection=Selection(metric=metric, mode=mode, best=value, epoch=None),
        epochs=sum(m.epochs for m in members),
        parameters=count_parameters(model.net),
        wall_seconds=time.perf_counter() - start,
        checkpoint=str(best_path),
        history=members[0].history,
        warnings=list(dm.fold.warnings),
        members=[
            {
                "seed": int(member_config(cfg, m).trainer.seed),
                "selection": asdict(r.selection),
                "epochs": r.epochs,
                "test_uar": (r.test or {}).get("uar"),
                "checkpoint": r.checkpoint,
            }
            for m, r in enumerate(members)
        ],
    )


def _train_svm_fold(
    cfg: DictConfig,
    dm: SERDataModule,
    fold_dir: Path,
    start: float,
    on_epoch: EpochHook | None,
    write_plots: bool,
) -> FoldResult:
    """The scikit-learn baseline: one "epoch" (the fit), its validation metrics reported like any fold's."""
    from ser.models.svm import fit_svm, predict_svm
    from ser.report.metrics import classification_metrics

    metric = str(cfg.trainer.monitor)
    if metric == "val/loss":
        raise ConfigError(
            "invalid config key 'trainer.monitor': the SVM has no loss; use val/uar, val/wa or val/f1"
        )
    x, y = (t.numpy() for t in dm.split_tensors("train"))
    model = fit_svm(x.reshape(len(x), -1), y, cfg.model)
    results, probs = {}, {}
    for split in ("val", "test") if dm.has_test else ("val",):
        xs, ys = (t.numpy() for t in dm.split_tensors(split))
        pred, probs[split] = predict_svm(model, xs.reshape(len(xs), -1), n_classes=dm.n_classes)
        results[split] = classification_metrics(ys, pred, dm.labels)
    from ser.report.predictions import FILENAME, write_predictions
    from ser.training.predictions import svm_predictions

    if dm.has_test:
        rows = np.sort(dm.test_idx)  # split_tensors("test") is in this order
        write_predictions(
            fold_dir / FILENAME, svm_predictions(probs["test"], dm.labels, dm.prepared, rows, dm.fold_index)
        )
    val = {f"val/{k}": float(results["val"][k]) for k in ("wa", "uar", "f1")}
    if on_epoch is not None:
        on_epoch(0, val, None)
    if write_plots and dm.has_test:
        plot_fold_confusion(results["test"], fold_dir, dm.fold_index)
    return FoldResult(
        fold=dm.fold_index,
        speakers=dm.split_speakers(),
        sizes=dm.split_sizes(),
        test=results.get("test"),
        selection=Selection(metric=metric, mode=monitor_mode(metric), best=val[metric], epoch=0),
        epochs=1,
        parameters=int(model[-1].support_vectors_.size),  # stored support-vector values
        wall_seconds=time.perf_counter() - start,
        checkpoint=None,
        history=[{"epoch": 0.0, **val}],
        warnings=list(dm.fold.warnings),
    )
