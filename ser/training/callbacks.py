"""Callbacks every fold trains with: per-epoch history, the pipeline facts stored in checkpoints, and the
per-epoch hook that sweeps (Tune, CV barrier, Ray Train) use to see each validation epoch."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback, Checkpoint

from ser.models import CKPT_KEY

HISTORY_KEY = "ser_history"  # checkpoint entry: the epochs trained so far, for a resumed fit
EpochHook = Callable[[int, dict[str, float], L.Trainer], None]  # (epoch, validation metrics, trainer)


class History(Callback):
    """Per-epoch metrics in memory: curves, selection and sweep reporting read them without parsing CSV.

    Lightning aggregates epoch-level metrics after the epoch-end hooks, so validation metrics are read at
    `on_validation_end` and an epoch's training metrics at the next epoch's start (or at the end of fit).
    Its rows travel in checkpoints, so a resumed fit keeps the epochs it trained before.
    """

    def __init__(self) -> None:
        self.epochs: list[dict[str, float]] = []

    @staticmethod
    def _metrics(trainer: L.Trainer, prefix: str) -> dict[str, float]:
        return {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith(prefix)}

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or trainer.state.fn != "fit":
            return
        epoch = float(trainer.current_epoch)
        self.epochs = [row for row in self.epochs if row["epoch"] != epoch]
        # the epoch's training metrics so far (validation runs after its last batch), so that a checkpoint
        # saved now already holds them: a resumed fit never has an epoch without them
        peek = getattr(pl_module, "epoch_train_metrics", None)
        train = peek() if callable(peek) else {}
        self.epochs.append({"epoch": epoch, **self._metrics(trainer, "val/"), **train})

    def _add_train(self, trainer: L.Trainer, epoch: int) -> None:
        """Training metrics Lightning aggregated for `epoch` that the row lacks (e.g. the L2 penalty)."""
        for row in self.epochs:
            if row["epoch"] == epoch:
                for key, value in self._metrics(trainer, "train/").items():
                    if key not in row and value == value:  # not NaN: an empty metric after a resume
                        row[key] = value

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.current_epoch > 0:
            self._add_train(trainer, trainer.current_epoch - 1)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._add_train(trainer, trainer.current_epoch - 1)

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict[str, Any]) -> None:
        checkpoint[HISTORY_KEY] = [dict(row) for row in self.epochs]

    def on_load_checkpoint(self, trainer, pl_module, checkpoint: dict[str, Any]) -> None:
        if trainer.state.fn == "fit":  # resuming; testing the best checkpoint keeps every epoch seen
            self.epochs = [dict(row) for row in checkpoint.get(HISTORY_KEY, [])]


class PipelineInfo(Callback):
    """Stores the resolved config and data facts in every checkpoint, as plain (weights-only-safe) types."""

    def __init__(self, info: dict[str, Any]) -> None:
        self.info = info

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict[str, Any]) -> None:
        checkpoint[CKPT_KEY] = self.info


class EpochEnd(Checkpoint):
    """Calls `hook(epoch, metrics, trainer)` after every validation epoch of fit (not the sanity check)
    with the epoch's validation and training metrics: how a sweep trial reports to Tune (with a resume
    checkpoint), meets its CV folds, or reports to Ray Train.

    A `Checkpoint` subclass only so that Lightning runs it after the best-checkpoint callback: a state
    saved from the hook then already knows whether this epoch was the best."""

    def __init__(self, hook: EpochHook) -> None:
        self.hook = hook

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or trainer.state.fn != "fit":
            return
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/")}
        peek = getattr(pl_module, "epoch_train_metrics", None)
        if callable(peek):
            metrics.update(peek())
        self.hook(trainer.current_epoch, metrics, trainer)


class EpochLines(Callback):
    """One console line per validation epoch, for runs without a progress bar (output to a file or a
    pipe, `trainer.progress_bar=false`): `fold 0 epoch 3/30: train/loss 1.21 val/loss 1.30 val/uar 0.412
    (best 0.431 at 2) 4 s`. Epochs are counted from 1, as everywhere a person reads them."""

    KEYS = ("train/loss", "val/loss", "val/uar", "val/wa")

    def __init__(self, fold: int, monitor: str, mode: str, console: Any) -> None:
        self.fold, self.monitor, self.mode, self.console = fold, monitor, mode, console
        self.best: tuple[float, int] | None = None
        self.started: float | None = None

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        import time

        self.started = time.perf_counter()

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        import time

        if trainer.sanity_checking or trainer.state.fn != "fit" or not trainer.is_global_zero:
            return
        epoch = trainer.current_epoch + 1
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/")}
        peek = getattr(pl_module, "epoch_train_metrics", None)
        if callable(peek):
            metrics.update(peek())
        value = metrics.get(self.monitor)
        if value is not None and value == value:
            best = self.best[0] if self.best is not None else None
            if best is None or (value > best if self.mode == "max" else value < best):
                self.best = (value, epoch)
        parts = [f"{k} {metrics[k]:.3f}" for k in self.KEYS if k in metrics]
        if self.best is not None:
            parts.append(f"(best {self.best[0]:.3f} at {self.best[1]})")
        seconds = time.perf_counter() - self.started if self.started is not None else 0.0
        self.console.print(
            f"fold {self.fold} epoch {epoch}/{trainer.max_epochs}: {' '.join(parts)} {seconds:.0f} s",
            highlight=False,
            soft_wrap=True,
        )
