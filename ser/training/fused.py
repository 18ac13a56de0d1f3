"""K models of one architecture trained as one fused model: the folds of a CV trial, or a seed ensemble.

Each model (a "member": one fold, or one seed on one fold) is built exactly as `train_fold` builds it
(`build_fold_model`: the same seed, initial weights, generator and DataModule), keeps its own optimizer,
LR schedule, weight average (EMA), early stopping, history and best checkpoint, and is fed its own batch
from its own split every step. Only the network's forward and backward run fused (ser.models.fused): one
grouped convolution / batched matmul / batch norm over the K models, so K small models keep a GPU as busy
as one larger one (HFTA, Wang et al. MLSys 2021). The loss is the sum of the K members' losses; since no
parameter is shared, each member's gradient, step and metrics are those it would have alone, up to
floating-point summation order.

What makes a fused run equal to K separate `train_fold` runs:
- members whose splits have fewer batches sit out the remaining steps of the epoch: they are not
  stepped, their optimizer moments, step counts, schedules and weight averages do not move;
- members are grouped by batch size each step (a last, smaller batch runs in its own group), so batch
  norm statistics never see padding;
- augmentation, mixup and dropout draw from each member's own generator, in the order it would alone;
- gradient clipping (`optim.grad_clip`) clips each member by its own gradient norm.

Checkpoints are ordinary single-model checkpoints (`ser evaluate` / `predict` read them); results are the
same `FoldResult`s `train_fold` returns. Resume states (for sweeps) are per member and fused-only.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.loggers import WandbLogger
from omegaconf import DictConfig, OmegaConf
from torch.optim.swa_utils import AveragedModel, get_ema_avg_fn

from ser.config import ConfigError, monitor_mode
from ser.data.datamodule import SERDataModule
from ser.data.prepared import PreparedData
from ser.models import CKPT_KEY
from ser.models.classifier import TrainingDiverged, restore_rng_state, rng_state
from ser.models.fused import NotFusable, check_fusable, fused_forward
from ser.models.optim import build_optimizer
from ser.models.registry import count_parameters
from ser.models.schedules import build_scheduler
from ser.training.callbacks import HISTORY_KEY, EpochHook
from ser.training.devices import resolve_device
from ser.training.fuse_decision import FUSED_STATE, fused_refusal
from ser.training.parts import (
    BEST,
    build_fold_model,
    checkpoint_info,
    fold_loggers,
    plot_fold_confusion,
    write_test_predictions,
)
from ser.training.result import FoldResult, Selection, best_of

log = logging.getLogger(__name__)


# -------------------------------------------------------------------------------------- one member
@dataclass
class MemberSpec:
    """One model of a fused run: its config (members differ only in `trainer.seed`), fold and folder."""

    cfg: DictConfig
    fold: int
    out_dir: Path
    hook: EpochHook | None = None
    resume_from: Path | None = None
    name: str | None = None  # W&B run name
    split: Any = None  # a Fold built elsewhere (the final held-out split); None: fold `fold` of the corpus


def batch_count(length: int, limit: float, what: str) -> int:
    """Batches per epoch under `trainer.limit_*_batches`, as Lightning counts them (a fraction in [0, 1]
    or a whole number of batches)."""
    limit = float(limit)
    if 0 <= limit <= 1:
        count = int(length * limit)
        if count == 0 and limit > 0 and length > 0:
            raise ConfigError(f"invalid config key 'trainer.{what}': {limit} of {length} batches is none")
        return count
    if limit > 1 and limit % 1.0 == 0:
        return min(length, int(limit))
    raise ConfigError(f"invalid config key 'trainer.{what}': {limit} must be in [0, 1] or a whole number")


def _f32(value: float) -> float:
    """A metric as Lightning's logged float32 tensor reads back (what History and EpochEnd see)."""
    return float(torch.tensor(float(value), dtype=torch.float32))


@dataclass
class Member:
    """A member's model and everything that trains it: what `train_fold`'s Trainer and callbacks hold."""

    spec: MemberSpec
    dm: SERDataModule
    model: Any  # EmotionClassifier
    info: dict[str, Any]
    optimizer: torch.optim.Optimizer
    scheduler: dict[str, Any] | None
    ema: AveragedModel | None
    n_train: int = 0
    n_val: int = 0
    epoch: int = 0  # the next epoch to train
    steps: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    best_value: float | None = None
    best_epoch: int | None = None
    best_state: dict[str, torch.Tensor] | None = None
    stop_wait: int = 0
    stop_best: float | None = None
    stopped: bool = False
    l2_sum: torch.Tensor | float = 0.0  # the epoch's L2 penalty x batch size, summed on the device
    l2_items: int = 0
    loggers: list[Any] = field(default_factory=list)
    loaders: dict[str, Any] = field(default_factory=dict)
    # (loss, predictions, labels, batch size) of the steps since the split's metrics were last updated
    pending: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]] = field(default_factory=list)

    @property
    def cfg(self) -> DictConfig:
        return self.spec.cfg

    @property
    def metric(self) -> str:
        return str(self.cfg.trainer.monitor)

    @property
    def best_path(self) -> Path:
        return self.spec.out_dir / f"{BEST}.ckpt"

    def loader(self, split: str):
        """The split's loader, made once (as Lightning asks for each loader once per fit)."""
        if split not in self.loaders:
            self.loaders[split] = getattr(self.dm, f"{split}_dataloader")()
        return self.loaders[split]

    def record(self, loss: torch.Tensor, logits: torch.Tensor, y: torch.Tensor) -> None:
        """A batch's loss and predictions, kept on the device: metrics are updated once per pass
        (`update_metrics`) rather than per step, which would wait for the device K times a step."""
        self.pending.append((loss.detach(), logits.detach().argmax(dim=-1), y, int(y.shape[0])))

    def update_metrics(self, split: str) -> None:
        """What `EmotionClassifier._update` does per batch, for the recorded batches at once."""
        if not self.pending:
            return
        losses, preds, labels, sizes = zip(*self.pending)
        self.pending = []
        metrics = getattr(self.model, f"{split}_metrics")
        weights = torch.tensor(sizes, dtype=torch.float32, device=losses[0].device)
        metrics["loss"].update(torch.stack(losses), weight=weights)
        metrics["confusion"].update(torch.cat(preds), torch.cat(labels))

    def eval_model(self):
        """What validation scores: the weight average when `optim.ema_decay` > 0, as in `train_fold`."""
        return self.ema.module if self.ema is not None else self.model

    def saved_state(self) -> dict[str, torch.Tensor]:
        """The checkpoint's `state_dict`: the weight average (with buffers) or the weights themselves."""
        if self.ema is None:
            return self.model.state_dict()
        return {k[len("module.") :]: v for k, v in self.ema.state_dict().items() if k.startswith("module.")}

    def checkpoint(self, epoch: int, training_state: bool) -> dict[str, Any]:
        """An ordinary `ser` checkpoint of this member after `epoch` (what `ser evaluate` / `predict`
        load); with `training_state`, also what resuming the fused run needs."""
        ckpt: dict[str, Any] = {
            "epoch": epoch,
            "global_step": self.steps,
            "pytorch-lightning_version": L.__version__,
            "state_dict": self.saved_state(),
            "hyper_parameters": dict(self.model.hparams),
            CKPT_KEY: self.info,
            HISTORY_KEY: [dict(row) for row in self.history],
            "rng": rng_state(self.model.generator),
        }
        if not training_state:
            return ckpt
        ckpt[FUSED_STATE] = {
            "optimizer": self.optimizer.state_dict(),
            "scheduler": None if self.scheduler is None else self.scheduler["scheduler"].state_dict(),
            "datamodule": self.dm.state_dict(),
            "best": [self.best_value, self.best_epoch],
            "early_stopping": [self.stop_wait, self.stop_best],
            "stopped": self.stopped,
        }
        if self.ema is not None:
            ckpt["current_model_state"] = self.model.state_dict()
            ckpt["averaging_state"] = {"n_averaged": self.ema.n_averaged}
        return ckpt

    def restore(self, ckpt: Mapping[str, Any]) -> None:
        """Continue from a resume state written by `checkpoint(training_state=True)`."""
        state = ckpt[FUSED_STATE]
        self.model.load_state_dict(ckpt.get("current_model_state", ckpt["state_dict"]))
        if self.ema is not None:
            averaged = {f"module.{k}": v for k, v in ckpt["state_dict"].items()}
            self.ema.load_state_dict({**averaged, **ckpt["averaging_state"]})
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None and state["scheduler"] is not None:
            self.scheduler["scheduler"].load_state_dict(state["scheduler"])
        self.dm.load_state_dict(state["datamodule"])
        restore_rng_state(ckpt["rng"], self.model.generator)
        self.epoch, self.steps = int(ckpt["epoch"]) + 1, int(ckpt["global_step"])
        self.history = [dict(row) for row in ckpt[HISTORY_KEY]]
        self.best_value, self.best_epoch = state["best"]
        self.stop_wait, self.stop_best = state["early_stopping"]
        self.stopped = bool(state["stopped"])
        if self.best_path.is_file():
            self.best_state = torch.load(self.best_path, map_location="cpu", weights_only=True)["state_dict"]


class ResumeWriter:
    """What an `EpochHook` is handed instead of a Lightning trainer: `save_checkpoint` writes the member's
    resume state (a sweep trial reports it to Tune)."""

    def __init__(self, member: Member) -> None:
        self.member = member

    def save_checkpoint(self, path: str | Path, weights_only: bool = False) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        member = self.member
        torch.save(member.checkpoint(member.epoch - 1, training_state=not weights_only), path)


def _save(ckpt: dict[str, Any], path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(ckpt, tmp)
    tmp.replace(path)


def _to(batch: Any, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    x, y = batch[0], batch[1]
    return x.to(device, non_blocking=True), y.to(device, non_blocking=True)


# ------------------------------------------------------------------------------------------ the loop
class FusedRun:
    """Train the members for `trainer.max_epochs` epochs in lockstep, one fused network call per step."""

    def __init__(
        self,
        prepared: PreparedData,
        specs: Sequence[MemberSpec],
        *,
        after_epoch: Callable[[int], None] | None = None,
        write_plots: bool = True,
        fuse_network: bool = True,
    ) -> None:
        if not specs:
            raise ValueError("a fused run needs at least one member")
        self.prepared = prepared
        self.fuse_network = fuse_network
        self.after_epoch = after_epoch
        self.write_plots = write_plots
        cfg = specs[0].cfg
        _check_same_except_seed(specs)
        refusal = fused_refusal(cfg)
        if refusal is not None:
            raise ConfigError(f"invalid config key 'trainer.fused': {refusal}")
        self.device = resolve_device(cfg)
        # both ways, as Lightning's Trainer does: a process that runs several trials (Tune reuses its
        # actors) must not keep the last one's setting
        torch.use_deterministic_algorithms(bool(cfg.trainer.deterministic))
        self.members = [self._member(spec) for spec in specs]
        if fuse_network:
            try:
                check_fusable([m.model.net for m in self.members])
            except NotFusable as exc:
                raise ConfigError(f"invalid config key 'trainer.fused': {exc}") from None

    def _member(self, spec: MemberSpec) -> Member:
        cfg = spec.cfg
        spec.out_dir.mkdir(parents=True, exist_ok=True)
        dm = SERDataModule(cfg, self.prepared, spec.fold, fold=spec.split)
        dm.batch_device = self.device
        model, feature_shape = build_fold_model(cfg, self.prepared, dm)
        model.to(self.device)
        optimizer = build_optimizer(model, model.optim_cfg)
        limit = cfg.trainer.limit_train_batches
        n_train = batch_count(len(dm.train_dataloader()), limit, "limit_train_batches")
        total = int(cfg.trainer.max_epochs) * n_train
        scheduler = build_scheduler(optimizer, model.optim_cfg, total)
        ema = None
        if float(cfg.optim.ema_decay) > 0:  # WeightEMA's AveragedModel, updated after every step
            ema = AveragedModel(
                model, device=self.device, use_buffers=True, avg_fn=get_ema_avg_fn(float(cfg.optim.ema_decay))
            )
        member = Member(
            spec=spec,
            dm=dm,
            model=model,
            info=checkpoint_info(cfg, self.prepared, dm, feature_shape),
            optimizer=optimizer,
            scheduler=scheduler,
            ema=ema,
            n_train=n_train,
        )
        member.n_val = batch_count(
            len(member.loader("val")), cfg.trainer.limit_val_batches, "limit_val_batches"
        )
        if spec.resume_from is not None:
            member.restore(torch.load(spec.resume_from, map_location="cpu", weights_only=True))
        name = spec.name or f"{spec.out_dir.parent.name}-{spec.out_dir.name}"
        member.loggers = fold_loggers(cfg, spec.out_dir, name, spec.out_dir.parent.name)
        return member

    # ---------------------------------------------------------------------------------- training
    def fit(self) -> None:
        max_epochs = int(self.members[0].cfg.trainer.max_epochs)
        epoch = min((m.epoch for m in self.members if not m.stopped), default=max_epochs)
        while epoch < max_epochs and any(not m.stopped for m in self.members):
            active = [m for m in self.members if not m.stopped and m.epoch == epoch]
            self._train_epoch(active)
            self._evaluate(active, "val")
            for member in active:
                self._end_epoch(member, epoch, max_epochs)
            if self.after_epoch is not None:
                self.after_epoch(epoch)
            epoch += 1
        for member in self.members:  # WeightEMA leaves the average in the model when fit ends
            if member.ema is not None:
                member.model.load_state_dict(member.saved_state())

    def _train_epoch(self, active: list[Member]) -> None:
        iterators = {}
        for member in active:
            member.model.train()
            member.l2_sum, member.l2_items = 0.0, 0
            iterators[id(member)] = iter(member.loader("train"))
        step = 0
        while True:
            batches = [(m, _to(next(iterators[id(m)]), self.device)) for m in active if step < m.n_train]
            if not batches:
                break
            self._step(batches)
            step += 1
        for member in active:
            member.update_metrics("train")

    def _step(self, batches: list[tuple[Member, tuple[torch.Tensor, torch.Tensor]]]) -> None:
        """One optimizer step of every member in `batches`: their networks fused into one forward and
        backward, or (without `fuse_network`) one member after another, so that only one member's
        activations are alive at a time."""
        parts = []
        for group in [batches] if self.fuse_network else [[b] for b in batches]:
            parts += self._backward(group)
        for (member, (_, y)), part in zip(batches, parts):
            model = member.model
            member.record(part["ce"], part["logits"], part["y"])
            if "l2_penalty" in part:
                member.l2_sum = member.l2_sum + part["l2_penalty"].detach() * y.shape[0]
                member.l2_items += y.shape[0]
            clip = float(member.cfg.optim.grad_clip)
            if clip > 0:  # by this member's own norm, as Lightning clips one model
                params = [p for group in member.optimizer.param_groups for p in group["params"]]
                torch.nn.utils.clip_grad_norm_(params, clip)
            member.optimizer.step()
            member.optimizer.zero_grad(set_to_none=True)
            member.steps += 1
            if member.scheduler is not None and member.scheduler["interval"] == "step":
                member.scheduler["scheduler"].step()
            if member.ema is not None:
                member.ema.update_parameters(model)

    def _backward(self, batches: list[tuple[Member, tuple[torch.Tensor, torch.Tensor]]]) -> list[dict]:
        """Forward and backward of the members' summed losses; each member's loss parts."""
        inputs = [m.model.training_inputs(batch) for m, batch in batches]
        nets = [m.model.net for m, _ in batches]
        logits = _grouped_forward(nets, [x for x, *_ in inputs], self.fuse_network)
        losses, parts = [], []
        for (member, _), (_, y, partner, lam), out in zip(batches, inputs, logits):
            loss, part = member.model.training_loss(out, y, partner, lam)
            losses.append(loss)
            parts.append(part)
        total = torch.stack(losses)
        finite = torch.isfinite(total)
        if not bool(finite.all()):  # one host sync per step for all members
            bad = int((~finite).nonzero()[0, 0])
            member = batches[bad][0]
            raise TrainingDiverged(
                f"fold {member.spec.fold}: loss became {float(total[bad])} at epoch {member.epoch} step "
                f"{member.steps}; lower optim.lr or enable grad clipping (optim.grad_clip)"
            )
        total.sum().backward()
        return parts

    # -------------------------------------------------------------------------------- evaluation
    @torch.no_grad()
    def _evaluate(self, members: list[Member], split: str) -> None:
        """One pass over each member's `split` (val: its weight average; test: its loaded best
        weights), fused across members, into each member's own metrics."""
        if not members:
            return
        scored = [m.eval_model() if split == "val" else m.model for m in members]
        for model in scored:
            model.eval()
        loaders = [m.loader(split) for m in members]
        limits = [m.n_val if split == "val" else len(loader) for m, loader in zip(members, loaders)]
        iterators = [iter(loader) for loader in loaders]
        step = 0
        while True:
            live = [i for i in range(len(members)) if step < limits[i]]
            if not live:
                break
            batches = [_to(next(iterators[i]), self.device) for i in live]
            feats = [scored[i].features(x) for i, (x, _) in zip(live, batches)]
            logits = _grouped_forward([scored[i].net for i in live], feats, self.fuse_network)
            for i, (_, y), out in zip(live, batches, logits):
                members[i].record(members[i].model.data_loss(out, y), out, y)
            step += 1
        for member in members:
            member.update_metrics(split)

    def _end_epoch(self, member: Member, epoch: int, max_epochs: int) -> None:
        """What History, ModelCheckpoint, EarlyStopping, the end of the training epoch, the LR scheduler
        and EpochEnd do after a member's validation."""
        model = member.model
        values = model._compute("val")
        model.val_results = values
        val = {f"val/{k}": _f32(values[k]) for k in ("loss", "wa", "uar", "f1")}
        train = model.epoch_train_metrics()
        member.history.append({"epoch": float(epoch), **val, **train})
        self._keep_best(member, epoch, val[member.metric])
        self._early_stopping(member, val[member.metric])
        model._compute("train")  # reset the epoch's training metrics (on_train_epoch_end)
        if member.l2_items:
            member.history[-1]["train/l2_penalty"] = float(member.l2_sum) / member.l2_items
        for logger in member.loggers:
            logger.log_metrics(member.history[-1], step=member.steps - 1)
        if member.scheduler is not None and member.scheduler["interval"] == "epoch":
            member.scheduler["scheduler"].step(val[member.scheduler.get("monitor", "val/loss")])
        member.epoch = epoch + 1
        member.stopped = member.stopped or member.epoch >= max_epochs
        if member.spec.hook is not None:  # last: a resume state saved here is the whole epoch
            member.spec.hook(epoch, {**val, **train}, ResumeWriter(member))

    def _keep_best(self, member: Member, epoch: int, current: float) -> None:
        """ModelCheckpoint(save_top_k=1): save when the monitored value strictly improves."""
        mode = monitor_mode(member.metric)
        if math.isnan(current):  # NaN never wins (ModelCheckpoint reads it as the worst value)
            current = float("-inf") if mode == "max" else float("inf")
        best = member.best_value
        if best is None or (current > best if mode == "max" else current < best):
            member.best_value, member.best_epoch = current, epoch
            ckpt = member.checkpoint(epoch, training_state=False)
            member.best_state = {k: v.detach().to("cpu", copy=True) for k, v in ckpt["state_dict"].items()}
            _save(ckpt, member.best_path)

    def _early_stopping(self, member: Member, current: float) -> None:
        """EarlyStopping(patience): stop after `patience` validations without a strict improvement, or at
        a non-finite value."""
        patience = int(member.cfg.trainer.early_stopping_patience)
        if patience <= 0:
            return
        if not math.isfinite(current):
            member.stopped = True
            return
        best = member.stop_best
        if best is None or (current > best if monitor_mode(member.metric) == "max" else current < best):
            member.stop_best, member.stop_wait = current, 0
            return
        member.stop_wait += 1
        member.stopped = member.stop_wait >= patience

    # ------------------------------------------------------------------------------------- test
    def test(self) -> list[dict[str, Any] | None]:
        """Score each member's test split once, on its best checkpoint (the weights validation chose);
        None for a member whose fold has no test split (CV folds when speakers are held out)."""
        for member in self.members:
            if member.best_state is not None:
                member.model.load_state_dict(member.best_state)
        tested = [member for member in self.members if member.dm.has_test]
        if tested:
            self._evaluate(tested, "test")
        results: list[dict[str, Any] | None] = []
        for member in self.members:
            if not member.dm.has_test:
                results.append(None)
                continue
            member.model.test_results = member.model._compute("test")
            results.append(dict(member.model.test_results))
        return results

    def results(self, start: float) -> list[FoldResult]:
        tests = self.test()
        out = []
        for member, test in zip(self.members, tests):
            value, epoch = best_of(member.history, member.metric, monitor_mode(member.metric))
            for logger in member.loggers:
                if test is not None:
                    metrics = {f"test/{k}": test[k] for k in ("loss", "wa", "uar", "f1")}
                    logger.log_metrics(metrics, member.steps)
                logger.save()
                if isinstance(logger, WandbLogger):
                    logger.experiment.finish()  # this member's W&B run only
                else:
                    logger.finalize("success")
            out.append(
                FoldResult(
                    fold=member.spec.fold,
                    speakers=member.dm.split_speakers(),
                    sizes=member.dm.split_sizes(),
                    test=test,
                    selection=Selection(member.metric, monitor_mode(member.metric), value, epoch),
                    epochs=len(member.history),
                    parameters=count_parameters(member.model.net),
                    wall_seconds=time.perf_counter() - start,
                    checkpoint=str(member.best_path) if member.best_path.is_file() else None,
                    history=[dict(row) for row in member.history],
                    warnings=list(member.dm.fold.warnings),
                )
            )
            if test is None:
                continue
            write_test_predictions(member.model, self.prepared, member.dm, member.spec.out_dir)
            if self.write_plots:
                plot_fold_confusion(test, member.spec.out_dir, member.spec.fold)
        return out


def _grouped_forward(
    nets: Sequence[torch.nn.Module], inputs: Sequence[torch.Tensor], fuse: bool = True
) -> list[torch.Tensor]:
    """Logits of each net on its input: one fused call per group of equal batch shape (a member's last,
    smaller batch runs in its own group, so batch norm never sees padding); without `fuse`, one call
    per net."""
    if not fuse:
        return [net(x) for net, x in zip(nets, inputs)]
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, x in enumerate(inputs):
        groups.setdefault(tuple(x.shape), []).append(i)
    out: list[torch.Tensor | None] = [None] * len(inputs)
    for members in groups.values():
        logits = fused_forward([nets[i] for i in members], [inputs[i] for i in members])
        for i, value in zip(members, logits):
            out[i] = value
    return out  # type: ignore[return-value]


def _check_same_except_seed(specs: Sequence[MemberSpec]) -> None:
    def without_seed(cfg: DictConfig) -> dict[str, Any]:
        data = OmegaConf.to_container(cfg, resolve=True)
        data["trainer"].pop("seed")
        data["data"].pop("fold")
        return data

    reference = without_seed(specs[0].cfg)
    for spec in specs[1:]:
        if without_seed(spec.cfg) != reference:
            raise ValueError("fused members must share one config apart from trainer.seed and data.fold")


# ------------------------------------------------------------------------------------ entry points
def train_fused(
    prepared: PreparedData,
    specs: Sequence[MemberSpec],
    *,
    after_epoch: Callable[[int], None] | None = None,
    write_plots: bool = True,
    fuse_network: bool = True,
) -> list[FoldResult]:
    """Train the members as one fused model (or, without `fuse_network`, in lockstep in one loop); each
    gets the `FoldResult` `train_fold` would give it."""
    start = time.perf_counter()
    run = FusedRun(
        prepared, specs, after_epoch=after_epoch, write_plots=write_plots, fuse_network=fuse_network
    )
    run.fit()
    return run.results(start)


def train_folds_fused(
    cfg: DictConfig,
    prepared: PreparedData,
    folds: Sequence[int],
    out_dir: Path,
    *,
    on_epoch: Mapping[int, EpochHook] | None = None,
    after_epoch: Callable[[int], None] | None = None,
    resume: Mapping[int, Path] | None = None,
    write_plots: bool = True,
    fuse_network: bool = True,
) -> list[FoldResult]:
    """The folds of one CV run as one fused model: fold k trains in out_dir/fold_k exactly as
    `train_fold(cfg, prepared, k, out_dir / f"fold_{k}")` would (seed trainer.seed + k)."""
    specs = [
        MemberSpec(
            cfg=cfg,
            fold=k,
            out_dir=out_dir / f"fold_{k}",
            hook=(on_epoch or {}).get(k),
            resume_from=(resume or {}).get(k),
        )
        for k in folds
    ]
    return train_fused(
        prepared, specs, after_epoch=after_epoch, write_plots=write_plots, fuse_network=fuse_network
    )


def train_seeds_fused(
    cfg: DictConfig,
    prepared: PreparedData,
    seeds: Sequence[int],
    out_dir: Path,
    fold: int | None = None,
    *,
    split: Any = None,
    write_plots: bool = True,
    fuse_network: bool = True,
) -> list[FoldResult]:
    """A seed ensemble at about the cost of one model: the same split trained with each `trainer.seed` in
    `seeds`, fused. Member j equals `train_fold(cfg with trainer.seed=seeds[j], prepared, fold, ...)`
    and writes out_dir/seed_<s>/best.ckpt; the FoldResults come back in the order of `seeds`."""
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds {list(seeds)} repeat a value: the members would be identical")
    if fold is None:
        if not str(cfg.data.fold).isdigit():
            raise ConfigError(
                f"invalid config key 'data.fold': a seed ensemble trains one fold, not {cfg.data.fold!r}"
            )
        fold = int(cfg.data.fold)
    specs = []
    for seed in seeds:
        member_cfg = cfg.copy()
        member_cfg.trainer.seed = int(seed)
        specs.append(MemberSpec(cfg=member_cfg, fold=fold, out_dir=out_dir / f"seed_{seed}", split=split))
    return train_fused(prepared, specs, write_plots=write_plots, fuse_network=fuse_network)
