"""`fit(cfg)`: the one training path, used by `ser fit` and by every sweep trial.

A run directory holds `config.yaml` (loadable by `ser fit --config`), `metrics.json` (per fold and mean/sd),
`confusion_matrix.png`, `curves.png`, and per fold the best checkpoint and CSV logs. Model selection
(checkpoint, early stopping) looks at validation only; the test fold is scored once, on the best checkpoint.
"""

from __future__ import annotations

import json
import logging
import os
import time
import warnings
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback, EarlyStopping, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger
from omegaconf import DictConfig, OmegaConf

from ser.config import ConfigError, to_yaml
from ser.data.datamodule import PreparedData, SERDataModule, prepare_data
from ser.data.features import Deltas
from ser.data.folds import parse_fold
from ser.data.normalize import FeatureNormalizer
from ser.models.averaging import weight_averaging
from ser.models.registry import build_model, count_parameters
from ser.report import classification_metrics, mean_sd, plot_confusion, plot_curves, summary_table

log = logging.getLogger(__name__)
CKPT_KEY = "ser"  # checkpoint entry holding what predict/evaluate need to rebuild the pipeline

warnings.filterwarnings("ignore", message=".*does not have many workers.*")
warnings.filterwarnings("ignore", message=".*exists and is not empty.*")
for _name in ("lightning.pytorch.utilities.rank_zero", "lightning.pytorch.accelerators.cuda"):
    logging.getLogger(_name).setLevel(logging.WARNING)  # GPU/TPU availability and tips on every run
warnings.filterwarnings("ignore", message=".*LeafSpec.*")


class History(Callback):
    """Per-epoch metrics in memory: curves and sweep reporting read them without parsing CSV.

    Lightning aggregates epoch-level metrics after the epoch-end hooks, so validation metrics are read at
    `on_validation_end` and an epoch's training metrics at the next epoch's start (or at the end of fit).
    """

    def __init__(self) -> None:
        self.epochs: list[dict[str, float]] = []

    @staticmethod
    def _metrics(trainer: L.Trainer, prefix: str) -> dict[str, float]:
        return {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith(prefix)}

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or trainer.state.fn != "fit":
            return
        self.epochs.append({"epoch": float(trainer.current_epoch), **self._metrics(trainer, "val/")})

    def _add_train(self, trainer: L.Trainer, epoch: int) -> None:
        for row in self.epochs:
            if row["epoch"] == epoch:
                row.update(self._metrics(trainer, "train/"))

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.current_epoch > 0:
            self._add_train(trainer, trainer.current_epoch - 1)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._add_train(trainer, trainer.current_epoch - 1)


class PipelineInfo(Callback):
    """Stores the resolved config and data facts in every checkpoint, as plain (weights-only-safe) types."""

    def __init__(self, info: dict[str, Any]) -> None:
        self.info = info

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict[str, Any]) -> None:
        checkpoint[CKPT_KEY] = self.info


def feature_frontend(cfg: DictConfig, kind: str) -> torch.nn.Module:
    """Waveform [B, T] -> features [B, 1, F, T'] with the same torch ops the cache used."""
    from ser.data.features import make_frontend

    return make_frontend(cfg.data.features, cfg.data.audio.sample_rate, kind)


def feature_bin_freqs(cfg: DictConfig, kind: str) -> torch.Tensor | None:
    """Centre frequencies (Hz) of the log-mel bins, for the frequency warp; MFCCs have no frequency axis
    to warp, so asking for the warp with them is a config error."""
    if float(cfg.data.augment.freq_warp_p) <= 0:
        return None
    if kind != "logmel":
        raise ConfigError(
            "invalid config key 'data.augment.freq_warp_p': the frequency warp needs log-mel features, "
            f"not {kind}"
        )
    import librosa

    feat = cfg.data.features
    fmax = float(feat.fmax) if feat.fmax is not None else cfg.data.audio.sample_rate / 2.0
    centres = librosa.mel_frequencies(n_mels=int(feat.n_mels) + 2, fmin=float(feat.fmin), fmax=fmax)[1:-1]
    return torch.as_tensor(centres, dtype=torch.float32)


def build_classifier(
    cfg: DictConfig,
    row_shape: tuple[int, ...],
    labels: Sequence[str],
    kind: str,
    waveform_mode: bool,
    train_rows: torch.Tensor | None = None,
    class_weights: torch.Tensor | None = None,
):
    """Network + frontend (featurise if rows are waveforms, then normalise) + train-only augmentation.

    `train_rows` (the TRAIN split only) fits `normalize=train` statistics; predict/evaluate pass None and
    load the fitted statistics from the checkpoint instead.
    """
    from ser.data.augment import build_mixup, build_spec_augment, build_wave_augment
    from ser.models.module import EmotionClassifier

    stages: list[torch.nn.Module] = []
    wave_augment = None
    generator = torch.Generator().manual_seed(int(cfg.trainer.seed))
    if waveform_mode:
        featurize = feature_frontend(cfg, kind)
        stages.append(featurize)
        wave_augment = build_wave_augment(cfg.data.augment, cfg.data.audio.sample_rate, generator=generator)
        with torch.no_grad():
            feature_shape = tuple(featurize(torch.zeros(1, row_shape[0])).shape[1:])
    else:
        feature_shape = tuple(row_shape)
    normalizer = FeatureNormalizer(cfg.data.features.normalize, feature_shape)
    if train_rows is not None and cfg.data.features.normalize == "train":
        if waveform_mode:
            with torch.no_grad():
                train_rows = torch.cat([stages[0](chunk) for chunk in train_rows.split(256)])
        normalizer.fit(train_rows)
    stages.append(normalizer)
    deltas = int(cfg.data.features.deltas)
    if deltas != 0:
        if len(feature_shape) != 3:
            raise ConfigError(
                "invalid config key 'data.features.deltas': time derivatives need a spectrogram feature "
                f"(logmel or mfcc), not {kind}"
            )
        stages.append(Deltas(deltas))
        c, f, t = feature_shape
        feature_shape = (c * (1 + deltas), f, t)
    net = build_model(cfg.model, feature_shape, len(labels))
    if cfg.trainer.channels_last and len(feature_shape) == 3:
        net = net.to(memory_format=torch.channels_last)
    if cfg.trainer.compile:
        net = torch.compile(net)
    spec_augment = None
    if len(feature_shape) == 3:
        spec_augment = build_spec_augment(
            cfg.data.augment, generator=generator, bin_freqs=feature_bin_freqs(cfg, kind)
        )
    model = EmotionClassifier(
        net=net,
        n_classes=len(labels),
        optim=OmegaConf.to_container(cfg.optim),
        labels=list(labels),
        class_weights=class_weights,
        frontend=torch.nn.Sequential(*stages),
        spec_augment=spec_augment,
        wave_augment=wave_augment,
        mixup=build_mixup(cfg.data.augment, generator=generator),
    )
    return model, feature_shape


def make_run_dir(cfg: DictConfig) -> Path:
    name = cfg.trainer.run_name or f"{datetime.now():%Y%m%d-%H%M%S}-{cfg.model.name}"
    run_dir = Path(cfg.trainer.output_dir) / name
    suffix = 1
    while run_dir.exists():
        run_dir = Path(cfg.trainer.output_dir) / f"{name}-{suffix}"
        suffix += 1
    run_dir.mkdir(parents=True)
    return run_dir


def _wandb_logger(cfg: DictConfig, run_dir: Path, name: str):
    if not cfg.wandb.enabled or cfg.wandb.mode == "disabled":
        return None
    from lightning.pytorch.loggers import WandbLogger

    os.environ.setdefault("WANDB_MODE", cfg.wandb.mode)
    os.environ.setdefault("WANDB_SILENT", "true")
    return WandbLogger(
        project=cfg.wandb.project,
        group=cfg.wandb.group or run_dir.name,
        name=name,
        save_dir=str(cfg.wandb.dir or run_dir),
        offline=cfg.wandb.mode == "offline",
        config=OmegaConf.to_container(cfg, resolve=True),
        reinit="create_new",  # folds of a CV trial run in threads: one live run each
    )


def fold_parts(
    cfg: DictConfig, prepared: PreparedData, dm: SERDataModule, fold_dir: Path
) -> tuple[torch.nn.Module, History, ModelCheckpoint, list[Callback]]:
    """What training one fold needs, for `fit_fold` and a DDP sweep trial alike: the classifier (fitted
    train-only statistics), its History and best-checkpoint callbacks, and every callback a fold trains
    with (those two, the pipeline info stored in the checkpoint, the weight average if asked for)."""
    model, feature_shape = build_classifier(
        cfg,
        dm.row_shape,
        prepared.labels,
        prepared.kind,
        prepared.waveform_mode,
        train_rows=dm.train_rows() if cfg.data.features.normalize == "train" else None,
        class_weights=dm.class_weights() if cfg.data.class_weights else None,
    )
    history = History()
    ckpt = ModelCheckpoint(
        dirpath=fold_dir, filename="best", monitor="val/uar", mode="max", save_top_k=1, save_last=False
    )
    info = {
        "config": OmegaConf.to_container(cfg, resolve=True),
        "labels": list(prepared.labels),
        "kind": prepared.kind,
        "waveform_mode": prepared.waveform_mode,
        "row_shape": list(dm.row_shape),
        "feature_shape": list(feature_shape),
        "fold": dm.fold_index,
        "speakers": dm.split_speakers(),
    }
    callbacks = [history, ckpt, PipelineInfo(info), *weight_averaging(cfg.optim.ema_decay)]
    return model, history, ckpt, callbacks


def fit_fold(
    cfg: DictConfig,
    prepared: PreparedData,
    fold_index: int,
    fold_dir: Path,
    callbacks: Sequence[Callback] = (),
    write_plots: bool = True,
) -> dict[str, Any]:
    """Train and test one speaker fold; returns the fold's metrics (also the best checkpoint path)."""
    start = time.perf_counter()
    L.seed_everything(int(cfg.trainer.seed) + fold_index, workers=True, verbose=False)
    dm = SERDataModule(cfg, prepared, fold_index)
    if cfg.model.name == "svm":
        return _fit_svm_fold(cfg, dm, fold_dir, start, write_plots)
    model, history, ckpt, fold_callbacks = fold_parts(cfg, prepared, dm, fold_dir)
    all_callbacks: list[Callback] = [*fold_callbacks, *callbacks]
    if cfg.trainer.early_stopping_patience > 0:
        all_callbacks.append(
            EarlyStopping("val/uar", mode="max", patience=cfg.trainer.early_stopping_patience)
        )
    loggers: list[Any] = [CSVLogger(str(fold_dir), name="", version="logs")]
    wandb_logger = _wandb_logger(cfg, fold_dir.parent, f"{fold_dir.parent.name}-fold{fold_index}")
    if wandb_logger is not None:
        loggers.append(wandb_logger)
    trainer = L.Trainer(
        max_epochs=cfg.trainer.max_epochs,
        accelerator=cfg.trainer.accelerator,
        devices=cfg.trainer.devices,
        precision=cfg.trainer.precision,
        deterministic=cfg.trainer.deterministic,
        gradient_clip_val=cfg.optim.grad_clip or None,
        limit_train_batches=cfg.trainer.limit_train_batches,
        limit_val_batches=cfg.trainer.limit_val_batches,
        enable_progress_bar=cfg.trainer.progress_bar,
        enable_model_summary=False,
        logger=loggers,
        callbacks=all_callbacks,
        num_sanity_val_steps=0,
        log_every_n_steps=1,
        default_root_dir=str(fold_dir),
    )
    try:
        trainer.fit(model, datamodule=dm)
        best = ckpt.best_model_path or None
        trainer.test(model, datamodule=dm, ckpt_path=best, verbose=False, weights_only=False)
    finally:
        if wandb_logger is not None:
            wandb_logger.experiment.finish()  # this fold's run only (not wandb.finish(): threads)
    test = dict(model.test_results)
    result = {
        "fold": fold_index,
        "speakers": dm.split_speakers(),
        "sizes": dm.split_sizes(),
        "test": test,
        "val_uar_best": float(max((h.get("val/uar", 0.0) for h in history.epochs), default=0.0)),
        "epochs": len(history.epochs),
        "parameters": count_parameters(model.net),
        "wall_seconds": time.perf_counter() - start,
        "checkpoint": str(best) if best else None,
        "history": history.epochs,
        "warnings": list(dm.fold.warnings),
    }
    if write_plots:
        plot_confusion(
            test["confusion"], prepared.labels, fold_dir / "confusion_matrix.png", f"fold {fold_index} (test)"
        )
    return result


def _fit_svm_fold(
    cfg: DictConfig, dm: SERDataModule, fold_dir: Path, start: float, write_plots: bool
) -> dict:
    """The scikit-learn baseline, reported in the same format as the torch models."""
    from ser.models.svm import fit_svm, predict_svm

    x, y = (t.numpy() for t in dm._split("train"))
    model = fit_svm(x.reshape(len(x), -1), y, cfg.model)
    results = {}
    for split in ("val", "test"):
        xs, ys = (t.numpy() for t in dm._split(split))
        pred, _ = predict_svm(model, xs.reshape(len(xs), -1), n_classes=dm.n_classes)
        results[split] = classification_metrics(ys, pred, dm.labels)
    fold_dir.mkdir(parents=True, exist_ok=True)
    if write_plots:
        plot_confusion(
            results["test"]["confusion"],
            dm.labels,
            fold_dir / "confusion_matrix.png",
            f"fold {dm.fold_index} (test)",
        )
    return {
        "fold": dm.fold_index,
        "speakers": dm.split_speakers(),
        "sizes": dm.split_sizes(),
        "test": results["test"],
        "val_uar_best": results["val"]["uar"],
        "epochs": 0,
        "parameters": int(model[-1].support_vectors_.size),  # stored support-vector values
        "wall_seconds": time.perf_counter() - start,
        "checkpoint": None,
        "history": [],
        "warnings": list(dm.fold.warnings),
    }


def summarize(fold_results: Sequence[dict[str, Any]]) -> dict[str, dict[str, float]]:
    summary = {f"test/{k}": mean_sd([r["test"][k] for r in fold_results]) for k in ("wa", "uar", "f1")}
    summary["val/uar_best"] = mean_sd([r["val_uar_best"] for r in fold_results])
    summary["epochs"] = mean_sd([r["epochs"] for r in fold_results])
    return summary


def fit_folds(
    cfg: DictConfig,
    prepared: PreparedData | None = None,
    callbacks_for_fold: Callable[[int], Sequence[Callback]] | None = None,
    run_dir: Path | None = None,
    console: Any = None,
) -> dict[str, Any]:
    """Train every fold named by `data.fold`; write the run directory; print the summary table."""
    from rich.console import Console

    console = console or Console(stderr=True)
    start = time.perf_counter()
    prepared = prepared or prepare_data(cfg, progress=cfg.trainer.progress_bar)
    for message in prepared.warnings:
        console.print(f"[yellow]warning:[/] {message}")
    if prepared.skipped:
        console.print(f"[yellow]{len(prepared.skipped)} file(s) skipped:[/]")
        for item in prepared.skipped:
            console.print(f"  {item.path}: {item.reason}")
    run_dir = run_dir or make_run_dir(cfg)
    (run_dir / "config.yaml").write_text(to_yaml(cfg))
    folds = parse_fold(str(cfg.data.fold), len(prepared.folds))
    results = []
    for index in folds:
        extra = callbacks_for_fold(index) if callbacks_for_fold else ()
        results.append(fit_fold(cfg, prepared, index, run_dir / f"fold_{index}", extra))
    summary = summarize(results)
    confusion = np.sum([r["test"]["confusion"] for r in results], axis=0).tolist()
    metrics = {
        "model": cfg.model.name,
        "parameters": results[0]["parameters"],
        "labels": prepared.labels,
        "feature": prepared.kind,
        "protocol": {
            "folds": len(prepared.folds),
            "evaluated_folds": folds,
            "speaker_independent": True,
            "utterances": int(len(prepared.y)),
            "speakers": len(set(prepared.speakers)),
        },
        "folds": [{k: v for k, v in r.items() if k != "history"} for r in results],
        "summary": summary,
        "confusion_total": confusion,
        "skipped": [{"path": s.path, "reason": s.reason} for s in prepared.skipped],
        "wall_seconds": time.perf_counter() - start,
    }
    (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    plot_confusion(
        confusion, prepared.labels, run_dir / "confusion_matrix.png", f"{cfg.model.name}: test folds {folds}"
    )
    if any(r["history"] for r in results):
        plot_curves(
            {f"fold {r['fold']}": r["history"] for r in results}, run_dir / "curves.png", cfg.model.name
        )
    console.print(summary_table(results, summary, f"{cfg.model.name}: speaker-independent test folds"))
    return {"run_dir": run_dir, "metrics": metrics, "folds": results}
