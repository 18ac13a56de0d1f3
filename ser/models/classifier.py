"""EmotionClassifier: one LightningModule for every architecture (the network is injected).

It owns what all models share, so that a sweep compares architectures and not training code: the
optional feature front end and train-only augmentation, the loss (class weights, label smoothing, an
explicit L2 penalty), the optimizer and LR schedule, and per-split metrics. SER papers report WA
(accuracy) and UA (unweighted average recall = macro recall); `val/uar` is the usual sweep objective.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from omegaconf import DictConfig
from torch import nn
from torchmetrics import MeanMetric
from torchmetrics.classification import MulticlassConfusionMatrix

from ser.config import OptimConfig
from ser.config.errors import UserError
from ser.models import CKPT_KEY
from ser.models.optim import as_optim_config, build_optimizer, split_decay_params
from ser.models.schedules import build_scheduler
from ser.report.metrics import metrics_from_confusion


def rng_state(generator: torch.Generator | None) -> dict[str, Any]:
    """The global torch / numpy / python RNG states and `generator`'s, as checkpoint-safe values."""
    import random

    import numpy as np

    np_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype("int64")), *np_state[2:]],
        "python": repr(random.getstate()),
        "generator": None if generator is None else generator.get_state(),
    }


def restore_rng_state(state: dict[str, Any], generator: torch.Generator | None) -> None:
    import ast
    import random

    import numpy as np

    torch.set_rng_state(state["torch"])
    kind, keys, *rest = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype("uint32"), *rest))
    random.setstate(ast.literal_eval(state["python"]))
    if generator is not None and state.get("generator") is not None:
        generator.set_state(state["generator"])


class TrainingDiverged(UserError, RuntimeError):
    """The training loss became NaN or infinite; going on would only waste the run."""


def _split_metrics(n_classes: int) -> nn.ModuleDict:
    """The loss mean and the confusion matrix; every other metric is computed from the confusion matrix
    (`metrics_from_confusion`), the same way for torch models, the SVM and `ser evaluate`. torchmetrics
    syncs both across DDP workers."""
    return nn.ModuleDict({"loss": MeanMetric(), "confusion": MulticlassConfusionMatrix(n_classes)})


class EmotionClassifier(L.LightningModule):
    """Classify a batch `(x, y)`: x is features [B, ...], or waveforms [B, T] when `frontend` is given.

    Training applies `wave_augment` -> `frontend` -> `spec_augment` -> `mixup` (each optional);
    validation, test and predict apply the front end only. After `trainer.test`, `test_results` holds
    wa, uar, f1, per-class recall and the confusion matrix (rows = true label); `val_results` the same
    for the last validation epoch. UA and macro-F1 average over the classes present in the split.

    `generator` is the one source of the run's augmentation randomness; its state travels in checkpoints
    (with the global RNGs), so a resumed fit draws what an uninterrupted one would have drawn.
    """

    def __init__(
        self,
        net: nn.Module,
        n_classes: int,
        optim: OptimConfig | Mapping[str, Any] | DictConfig,
        labels: list[str] | None = None,
        class_weights: torch.Tensor | None = None,
        frontend: nn.Module | None = None,
        spec_augment: nn.Module | None = None,
        wave_augment: nn.Module | None = None,
        mixup: nn.Module | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        if n_classes < 2:
            raise ValueError(f"n_classes={n_classes}: emotion classification needs at least 2 classes")
        labels = list(labels) if labels is not None else [str(i) for i in range(n_classes)]
        if len(labels) != n_classes:
            raise ValueError(f"{len(labels)} labels {labels} for n_classes={n_classes}")
        self.optim_cfg = as_optim_config(optim)
        # Plain values only, so hparams.yaml and checkpoints stay readable; modules are passed again
        # to `load_from_checkpoint(path, net=...)`.
        self.save_hyperparameters(
            {"n_classes": n_classes, "optim": dataclasses.asdict(self.optim_cfg), "labels": labels}
        )
        self.net = net
        self.frontend = frontend
        self.spec_augment = spec_augment
        self.wave_augment = wave_augment
        self.mixup = mixup
        self.generator = generator
        self.n_classes = n_classes
        self.labels = labels
        # what `ser predict`/`evaluate` need to rebuild the pipeline (plain types), when no PipelineInfo
        # callback stores it: set by ser.api.build_model for a Trainer that is not ser's
        self.pipeline_info: dict[str, Any] | None = None
        if class_weights is not None:
            class_weights = torch.as_tensor(class_weights, dtype=torch.float32).flatten()
            if class_weights.numel() != n_classes or not torch.all(class_weights > 0):
                raise ValueError(f"class_weights must be {n_classes} positive numbers, got {class_weights}")
        self.register_buffer("class_weights", class_weights)
        # Separate metric state per split (attributes, since nn.ModuleDict cannot hold a key "train").
        self.train_metrics = _split_metrics(n_classes)
        self.val_metrics = _split_metrics(n_classes)
        self.test_metrics = _split_metrics(n_classes)
        self.val_results: dict[str, Any] = {}
        self.test_results: dict[str, Any] = {}

    # ---- forward ---------------------------------------------------------------------------------
    def features(self, x: torch.Tensor, augment: bool = False) -> torch.Tensor:
        """Input batch -> network input; augmentation only when `augment` (the training step)."""
        augment = augment and self.training
        if self.frontend is not None:
            if augment and self.wave_augment is not None:
                x = self.wave_augment(x)
            x = self.frontend(x)
        if augment and self.spec_augment is not None:
            x = self.spec_augment(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits [B, n_classes] without augmentation."""
        return self.net(self.features(x))

    # ---- loss ------------------------------------------------------------------------------------
    def l2_penalty(self) -> torch.Tensor:
        """sum(w**2) over weight matrices and kernels (not biases or normalisation parameters)."""
        weights, _ = split_decay_params(self)
        if not weights:
            return torch.zeros((), device=self.device)
        return torch.stack([w.pow(2).sum() for w in weights]).sum()

    def data_loss(self, logits: torch.Tensor, y: torch.Tensor, smoothing: float = 0.0) -> torch.Tensor:
        return F.cross_entropy(logits, y, weight=self.class_weights, label_smoothing=smoothing)

    def training_objective(self, batch: Any) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """(loss to minimise, parts): cross-entropy with label smoothing plus optim.l2 * sum(w**2).

        With mixup the cross-entropy is lam * CE(y) + (1 - lam) * CE(partner); `y` is the dominant
        label. Trainer-free so that tests can check the arithmetic directly.
        """
        x, y, partner, lam = self.training_inputs(batch)
        return self.training_loss(self.net(x), y, partner, lam)

    def training_inputs(self, batch: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, float]:
        """(network input, labels, mixup partner labels or None without mixup, mixup weight): the
        augmented batch. Split from the loss so that a fused run (ser.training.fused) can feed K models'
        inputs through one network call and still draw and score exactly as each model alone."""
        x, y = batch[0], batch[1]
        x = self.features(x, augment=True)
        if self.mixup is None:
            return x, y, None, 1.0
        x, partner, lam = self.mixup(x, y)
        return x, y, partner, lam

    def training_loss(
        self, logits: torch.Tensor, y: torch.Tensor, partner: torch.Tensor | None, lam: float
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The training objective from the network's logits on `training_inputs`.

        A multi-view network (ser.models.multiview) may leave more in `training_terms()`: late fusion's
        branch logits, each trained on its own cross-entropy (their sum replaces the fused one), and the
        speaker adversary's logits and labels, whose cross-entropy is added (its gradient reaches the
        embedding reversed and weighted)."""
        terms = self.net.training_terms() if hasattr(self.net, "training_terms") else {}
        ce = sum(self._mixed_ce(branch, y, partner, lam) for branch in terms.get("branches", [logits]))
        parts = {"ce": ce, "logits": logits, "y": y}
        if "adversary" in terms:
            speaker_logits, speakers = terms["adversary"]
            parts["adversary"] = F.cross_entropy(speaker_logits, speakers)
            ce = ce + parts["adversary"]
        if self.optim_cfg.l2 > 0:
            parts["l2_penalty"] = self.optim_cfg.l2 * self.l2_penalty()
            return ce + parts["l2_penalty"], parts
        return ce, parts

    def _mixed_ce(
        self, logits: torch.Tensor, y: torch.Tensor, partner: torch.Tensor | None, lam: float
    ) -> torch.Tensor:
        smoothing = self.optim_cfg.label_smoothing
        if partner is None:
            return self.data_loss(logits, y, smoothing)
        ce = lam * self.data_loss(logits, y, smoothing)
        if lam < 1.0:
            ce = ce + (1.0 - lam) * self.data_loss(logits, partner, smoothing)
        return ce

    # ---- steps -----------------------------------------------------------------------------------
    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        loss, parts = self.training_objective(batch)
        # One host sync per step; training on after a NaN only burns the rest of the budget.
        if not torch.isfinite(loss):
            raise TrainingDiverged(
                f"loss became {loss.item()} at epoch {self.current_epoch} step {self.global_step}; "
                "lower optim.lr or enable grad clipping (optim.grad_clip)"
            )
        self._update("train", parts["ce"].detach(), parts["logits"].detach(), parts["y"])
        if "l2_penalty" in parts:
            self.log("train/l2_penalty", parts["l2_penalty"].detach(), on_step=False, on_epoch=True)
        if "adversary" in parts:  # the speaker classifier's loss: near log(speakers) when it is fooled
            self.log("train/adversary_loss", parts["adversary"].detach(), on_step=False, on_epoch=True)
        self.log("lr", self.trainer.optimizers[0].param_groups[0]["lr"], on_step=True, on_epoch=False)
        return loss

    def _eval_step(self, stage: str, batch: Any) -> None:
        x, y = batch[0], batch[1]
        logits = self(x)
        # No label smoothing here: val/test loss measures the model, not the training regulariser.
        self._update(stage, self.data_loss(logits, y), logits, y)

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self._eval_step("val", batch)

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self._eval_step("test", batch)

    def predict_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> torch.Tensor:
        """Class probabilities [B, n_classes]; accepts `x`, `(x,)` or `(x, y)`."""
        x = batch[0] if isinstance(batch, (tuple, list)) else batch
        return torch.softmax(self(x), dim=-1)

    # ---- metrics ---------------------------------------------------------------------------------
    def _update(self, stage: str, loss: torch.Tensor, logits: torch.Tensor, y: torch.Tensor) -> None:
        m = getattr(self, f"{stage}_metrics")
        m["loss"].update(loss, weight=y.shape[0])
        m["confusion"].update(logits.argmax(dim=-1), y)

    def _compute(self, stage: str) -> dict[str, Any]:
        """Compute and reset one split's metrics: loss, wa, uar, f1, per-class recall, confusion."""
        m = getattr(self, f"{stage}_metrics")
        loss = float(m["loss"].compute())
        confusion = m["confusion"].compute().long().cpu().tolist()
        for metric in m.values():
            metric.reset()
        return {"loss": loss, **metrics_from_confusion(confusion, self.labels)}

    def epoch_train_metrics(self) -> dict[str, float]:
        """This epoch's training metrics so far, without resetting them: Lightning logs the epoch's training
        metrics only after validation, but a sweep reports at validation end."""
        m = self.train_metrics
        if int(m["confusion"].confmat.sum()) == 0:
            return {}
        values = metrics_from_confusion(m["confusion"].confmat.long().cpu().tolist(), self.labels)
        return {
            "train/loss": float(m["loss"].compute()),
            **{f"train/{k}": values[k] for k in ("wa", "uar", "f1")},
        }

    def _log_split(self, stage: str, values: dict[str, Any]) -> None:
        for name in ("loss", "wa", "uar", "f1"):
            self.log(f"{stage}/{name}", values[name], on_step=False, on_epoch=True, prog_bar=name == "uar")

    def on_train_epoch_end(self) -> None:
        self._log_split("train", self._compute("train"))

    def on_validation_epoch_end(self) -> None:
        values = self._compute("val")
        if self.trainer.sanity_checking:  # a couple of batches before training: not a real epoch
            return
        self._log_split("val", values)
        self.val_results = values

    def on_test_epoch_end(self) -> None:
        values = self._compute("test")
        self._log_split("test", values)
        self.test_results = values

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["rng"] = rng_state(self.generator)
        if self.pipeline_info is not None:  # built by ser.api: a user's own Trainer saves a ser checkpoint
            checkpoint.setdefault(CKPT_KEY, self.pipeline_info)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if "rng" in checkpoint and self.trainer.state.fn == "fit":  # resuming: draw on where it stopped
            restore_rng_state(checkpoint["rng"], self.generator)

    # ---- optimisation ----------------------------------------------------------------------------
    def configure_optimizers(self) -> Any:
        optimizer = build_optimizer(self, self.optim_cfg)
        total = None
        if self.optim_cfg.schedule in ("tristage", "cosine"):
            total = self.trainer.estimated_stepping_batches
        scheduler = build_scheduler(optimizer, self.optim_cfg, total)
        if scheduler is None:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": scheduler}
