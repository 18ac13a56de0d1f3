"""The one Lightning Trainer factory: `ser fit`, every sweep trial (single, CV, DDP) and `ser evaluate`."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback
from omegaconf import DictConfig

from ser.training.devices import check_accelerator

warnings.filterwarnings("ignore", message=".*does not have many workers.*")
warnings.filterwarnings("ignore", message=".*exists and is not empty.*")
warnings.filterwarnings("ignore", message=".*LeafSpec.*")
warnings.filterwarnings("ignore", message=".*`weights_only` was not set.*")
for _name in ("lightning.pytorch.utilities.rank_zero", "lightning.pytorch.accelerators.cuda"):
    logging.getLogger(_name).setLevel(logging.WARNING)  # GPU/TPU availability and tips on every run


@dataclass
class Distributed:
    """How a DDP worker runs the fold (Ray Train): its strategy, plugins and accelerator."""

    strategy: Any
    plugins: list[Any] = field(default_factory=list)
    accelerator: str = "cpu"
    prepare: Callable[[L.Trainer], L.Trainer] | None = None  # e.g. ray.train.lightning.prepare_trainer


def make_trainer(
    cfg: DictConfig,
    root_dir: Path,
    callbacks: Sequence[Callback] = (),
    logger: Any = False,
    distributed: Distributed | None = None,
    training: bool = True,
) -> L.Trainer:
    """A Trainer with the run's settings; `training=False` for scoring a checkpoint (no loggers, no
    checkpoints)."""
    accelerator = distributed.accelerator if distributed else str(cfg.trainer.accelerator)
    check_accelerator(accelerator)
    kwargs: dict[str, Any] = {}
    if distributed is not None:
        kwargs.update(strategy=distributed.strategy, plugins=distributed.plugins, devices="auto")
    else:
        kwargs["devices"] = cfg.trainer.devices if training else 1
    trainer = L.Trainer(
        max_epochs=int(cfg.trainer.max_epochs),
        accelerator=accelerator,
        precision=cfg.trainer.precision,
        deterministic=cfg.trainer.deterministic,
        gradient_clip_val=(cfg.optim.grad_clip or None) if training else None,
        limit_train_batches=cfg.trainer.limit_train_batches,
        limit_val_batches=cfg.trainer.limit_val_batches,
        enable_progress_bar=bool(cfg.trainer.progress_bar) and training,
        enable_model_summary=False,
        enable_checkpointing=training,
        logger=logger if training else False,
        callbacks=list(callbacks),
        num_sanity_val_steps=0,
        log_every_n_steps=1,
        default_root_dir=str(root_dir),
        **kwargs,
    )
    if distributed is not None and distributed.prepare is not None:
        trainer = distributed.prepare(trainer)
    return trainer
