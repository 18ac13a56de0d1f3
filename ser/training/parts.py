"""The pieces of a fold run that both fold trainers share: `train_fold` (ser.training.fold, one Lightning
loop per fold) and the fused K-model loop (ser.training.fused). They live here, below both, so neither
trainer imports the other for them: the model a fold starts from, what its checkpoint carries, its
loggers (CSV, TensorBoard, W&B), its test predictions and confusion plot.
"""

from __future__ import annotations

import itertools
import threading
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger, WandbLogger
from omegaconf import DictConfig, OmegaConf

from ser.data.datamodule import SERDataModule
from ser.data.prepared import PreparedData
from ser.models.pipeline import NetSource, build_classifier
from ser.report.plots import plot_confusion

BEST = "best"  # fold_K/best.ckpt: the checkpoint chosen on validation
# Folds of a CV trial train in threads that share torch's global generator: seeding and drawing the
# initial weights happen under this lock, so a fold's initial weights do not depend on thread timing.
_INIT_LOCK = threading.Lock()


def plot_fold_confusion(test: dict[str, Any], fold_dir: Path, fold_index: int) -> None:
    plot_confusion(
        test["confusion"], test["labels"], fold_dir / "confusion_matrix.png", f"fold {fold_index} (test)"
    )


def fold_seed(cfg: DictConfig, fold_index: int) -> int:
    return int(cfg.trainer.seed) + fold_index


def build_fold_model(
    cfg: DictConfig, prepared: PreparedData, dm: SERDataModule, net: NetSource | None = None
):
    """(EmotionClassifier, feature shape) of fold `dm.fold_index`, its initial weights drawn from torch's
    global generator seeded with the fold's seed: the same model whichever path trains it (one fold,
    threads, fused with other folds by ser.training.fused, or a user's own Trainer through ser.api).
    `net`: the caller's network instead of the registry's (ser.models.pipeline.build_classifier)."""
    seed = fold_seed(cfg, dm.fold_index)
    with _INIT_LOCK:
        L.seed_everything(seed, workers=True, verbose=False)
        return build_classifier(
            cfg,
            dm.row_shape,
            prepared.labels,
            prepared.kind,
            prepared.waveform_mode,
            train_rows=dm.train_rows() if needs_train_rows(cfg, prepared) else None,
            class_weights=dm.class_weights() if cfg.data.class_weights else None,
            seed=seed,
            encoder=prepared.encoder,
            layout=prepared.layout,
            net=net,
        )


def needs_train_rows(cfg: DictConfig, prepared: PreparedData) -> bool:
    """Training-split statistics to fit: normalize=train, or a fusion view not standardised per speaker."""
    return cfg.data.features.normalize == "train" or prepared.layout is not None


def checkpoint_info(
    cfg: DictConfig, prepared: PreparedData, dm: SERDataModule, feature_shape
) -> dict[str, Any]:
    """What a checkpoint carries besides weights (plain types): enough to rebuild the whole pipeline."""
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
    if prepared.encoder is not None:  # the ssl family: which encoder (id, revision, identity, settings)
        info["encoder"] = prepared.encoder
    if prepared.layout is not None:  # packed views (fusion, the speaker adversary)
        info["layout"] = prepared.layout.to_record()
        if str(cfg.model.fusion) != "none" and cfg.model.fusion_view == "encoder":
            from ser.data.encoders.source import resolve_encoder

            # which weights made the view: `ser predict` recomputes it and must use the same ones
            source = resolve_encoder(
                cfg.model.encoder, cfg.model.encoder_revision, cfg.data.features.cache_dir
            )
            info["view_encoder"] = {"source": source.source, "identity": source.identity}
    return info


def wandb_logger(cfg: DictConfig, save_dir: Path, name: str, group: str | None = None):
    """A live W&B logger (offline unless `wandb.mode` says otherwise) whose config is the fold's own
    resolved config, or None when W&B is off."""
    if not cfg.wandb.enabled or cfg.wandb.mode == "disabled":
        return None
    import os

    os.environ.setdefault("WANDB_SILENT", "true")
    return WandbLogger(
        project=cfg.wandb.project,
        group=cfg.wandb.group or group,
        name=name,
        save_dir=str(cfg.wandb.dir or save_dir),
        offline=cfg.wandb.mode == "offline",
        mode=cfg.wandb.mode,
        config=OmegaConf.to_container(cfg, resolve=True),
        reinit="create_new",  # folds of a CV trial run in threads: one live run each
    )


_WRITERS = itertools.count(1)


class FoldTensorBoard(TensorBoardLogger):
    """Lightning closes the event writer when fit ends and the test phase reopens it; tensorboardX names an
    event file by the second it was opened, so a fold whose fit and test share a second had its epochs'
    file replaced by the test's. Each reopened writer gets a suffix of its own."""

    def finalize(self, status: str) -> None:
        super().finalize(status)
        if self._experiment is not None:
            self._experiment._filename_suffix = f".{next(_WRITERS)}"  # tensorboardX's reopen reads it


def fold_loggers(cfg: DictConfig, fold_dir: Path, name: str, group: str | None = None) -> list[Any]:
    """Where a fold's epochs are logged: CSV always (fold_K/logs/metrics.csv), TensorBoard event files
    with `trainer.tensorboard` (fold_K/tensorboard/: `tensorboard --logdir runs/` shows every fold, and
    `--logdir sweep_results/NAME` every trial), W&B with `wandb.enabled`. The same keys in all three."""
    loggers: list[Any] = [CSVLogger(str(fold_dir), name="", version="logs")]
    if cfg.trainer.tensorboard:
        board = FoldTensorBoard(str(fold_dir), name="", version="tensorboard", default_hp_metric=False)
        loggers.append(board)
    run = wandb_logger(cfg, fold_dir, name, group)
    if run is not None:
        loggers.append(run)
    return loggers


def write_test_predictions(model, prepared: PreparedData, dm: SERDataModule, fold_dir: Path) -> Path:
    """fold_dir/predictions.npz: the tested checkpoint's probabilities and embeddings per test utterance."""
    from ser.report.predictions import FILENAME, write_predictions
    from ser.training.predictions import collect_predictions

    rows = np.sort(dm.test_idx)
    batch = int(dm.cfg.data.batch_size)
    return write_predictions(
        fold_dir / FILENAME, collect_predictions(model, prepared, rows, dm.fold_index, batch)
    )


VAL_PREDICTIONS = "val_predictions.npz"


def write_val_predictions(model, prepared: PreparedData, dm: SERDataModule, fold_dir: Path) -> Path | None:
    """fold_dir/val_predictions.npz: the chosen checkpoint's class probabilities per validation utterance
    (no embeddings), so a single-fold sweep trial gets an interval resampled by speaker (ser.sweep.stats)."""
    import dataclasses

    from ser.report.predictions import write_predictions
    from ser.training.predictions import collect_predictions

    rows = np.sort(dm.val_idx)
    if rows.size == 0:
        return None
    found = collect_predictions(model, prepared, rows, dm.fold_index, int(dm.cfg.data.batch_size))
    return write_predictions(fold_dir / VAL_PREDICTIONS, dataclasses.replace(found, embeddings=None))
