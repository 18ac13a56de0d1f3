"""A sweep trial trained by several DDP workers (`resources.workers > 1`), through Ray Train.

Ray Train V2 runs a distributed job from inside a Tune trial: the Tune trainable here is a small driver
(`run_ddp_trial`) that starts a `TorchTrainer` whose workers each run `ddp_worker`. Every worker trains the
same `build_classifier` model on its shard of the fold (Lightning's DistributedSampler; torchmetrics sync
the validation metrics across workers), reports the validation metrics after every epoch, and
`TuneReportCallback` forwards rank 0's report to Tune, so ASHA sees one result per epoch exactly as in a
single-worker trial. Rank 0 writes the trial's `trial_result.json`, `config.yaml` and `fold_K/best.ckpt`
into the Tune trial directory (one node, or storage shared by the nodes).
"""

from __future__ import annotations

import json
import time
import traceback
import warnings
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.callbacks import Callback
from omegaconf import OmegaConf

from ser.config import RootConfig, merge_into
from ser.sweep.spec import apply_params
from ser.sweep.trainable import REPORTED, _prepared_for, _trial_dir

WORLD_SIZE_KEY = "ddp/world_size"  # reported with every epoch: what the trial really ran on


class TrainReport(Callback):
    """Reports each validation epoch to Ray Train from every worker (V2 reports are collective);
    the metrics are already synced across workers, and Tune gets rank 0's."""

    def on_validation_end(self, trainer, pl_module) -> None:
        import ray.train

        if trainer.sanity_checking:
            return
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k in REPORTED}
        metrics[WORLD_SIZE_KEY] = trainer.world_size
        ray.train.report(metrics)


def _trial_cfg(params: dict[str, Any], base: dict[str, Any]):
    base_cfg = merge_into(OmegaConf.structured(RootConfig), OmegaConf.create(base), "sweep base")
    cfg = apply_params(base_cfg, params)
    cfg.trainer.progress_bar = False
    cfg.trainer.early_stopping_patience = 0  # the scheduler stops trials
    cfg.data.device_resident = False  # DataLoaders, so that Lightning shards them per worker
    return cfg


def ddp_worker(config: dict[str, Any]) -> None:
    """One DDP worker: the fit/test of `ser.train.fit_fold`, under Ray's DDP strategy."""
    import lightning as L
    import ray
    import ray.train
    from ray.train.lightning import RayDDPStrategy, RayLightningEnvironment, prepare_trainer

    from ser.data.datamodule import SERDataModule
    from ser.data.folds import parse_fold
    from ser.train import fold_parts, summarize

    start = time.perf_counter()
    # the logged epoch metrics are torchmetrics results, already synced across workers
    warnings.filterwarnings("ignore", message=".*sync_dist=True.*")
    torch.set_num_threads(max(1, int(float(config["cpu"]))))
    cfg = _trial_cfg(config["params"], config["base"])
    prepared = ray.get(config["prepared"])
    trial_dir = Path(config["trial_dir"])
    rank = ray.train.get_context().get_world_rank()
    index = parse_fold(str(cfg.data.fold), len(prepared.folds))[0]
    fold_dir = trial_dir / f"fold_{index}"
    L.seed_everything(int(cfg.trainer.seed) + index, workers=True, verbose=False)
    dm = SERDataModule(cfg, prepared, index)
    model, history, ckpt, fold_callbacks = fold_parts(cfg, prepared, dm, fold_dir)
    trainer = L.Trainer(
        max_epochs=cfg.trainer.max_epochs,
        accelerator="gpu" if config["gpu"] > 0 else "cpu",
        devices="auto",
        strategy=RayDDPStrategy(),
        plugins=[RayLightningEnvironment()],
        precision=cfg.trainer.precision,
        deterministic=cfg.trainer.deterministic,
        gradient_clip_val=cfg.optim.grad_clip or None,
        limit_train_batches=cfg.trainer.limit_train_batches,
        limit_val_batches=cfg.trainer.limit_val_batches,
        enable_progress_bar=False,
        enable_model_summary=False,
        logger=False,
        callbacks=[*fold_callbacks, TrainReport()],
        num_sanity_val_steps=0,
        default_root_dir=str(fold_dir),
    )
    trainer = prepare_trainer(trainer)
    try:
        trainer.fit(model, datamodule=dm)
        best = ckpt.best_model_path or None
        trainer.test(model, datamodule=dm, ckpt_path=best, verbose=False, weights_only=False)
    except Exception as exc:
        if rank == 0:
            (trial_dir / "trial_result.json").write_text(
                json.dumps({"status": "error", "error": f"{type(exc).__name__}: {exc}"})
            )
            (trial_dir / "error_traceback.txt").write_text(traceback.format_exc())
        raise
    if rank != 0:
        return
    fold = {
        "fold": index,
        "speakers": dm.split_speakers(),
        "sizes": dm.split_sizes(),
        "test": dict(model.test_results),  # torchmetrics synced: the whole test split
        "val_uar_best": float(max((h.get("val/uar", 0.0) for h in history.epochs), default=0.0)),
        "epochs": len(history.epochs),
        "wall_seconds": time.perf_counter() - start,
        "checkpoint": str(best) if best else None,
        "world_size": trainer.world_size,
    }
    (trial_dir / "trial_result.json").write_text(
        json.dumps({"status": "completed", "summary": summarize([fold]), "folds": [fold]}, indent=2)
    )


def run_ddp_trial(
    params: dict[str, Any],
    base: dict[str, Any] | None = None,
    sweep: dict[str, Any] | None = None,
    prepared: dict[str, Any] | None = None,
) -> None:
    """Tune function trainable (the trial's driver): starts the `TorchTrainer` and waits for it."""
    import ray
    import ray.train
    from ray.train.torch import TorchConfig, TorchTrainer
    from ray.tune.integration.ray_train import TuneReportCallback

    sweep = sweep or {}
    base = base or {}
    if int(sweep.get("cv", {}).get("folds", 0)) > 0:
        raise ValueError("cv.folds > 0 with resources.workers > 1 is not supported: use one of them")
    resources = sweep.get("resources", {})
    workers, cpu, gpu = int(resources["workers"]), float(resources["cpu"]), float(resources["gpu"])
    cfg = _trial_cfg(params, base)
    trial_dir = _trial_dir()
    (trial_dir / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    data = _prepared_for(cfg, prepared or {})
    per_worker = {"CPU": cpu, **({"GPU": gpu} if gpu > 0 else {})}
    trainer = TorchTrainer(
        ddp_worker,
        train_loop_config={
            "params": dict(params),
            "base": base,
            "prepared": ray.put(data),
            "trial_dir": str(trial_dir),
            "cpu": cpu,
            "gpu": gpu,
        },
        scaling_config=ray.train.ScalingConfig(
            num_workers=workers, use_gpu=gpu > 0, resources_per_worker=per_worker
        ),
        torch_config=TorchConfig(backend="nccl" if gpu > 0 else "gloo"),
        run_config=ray.train.RunConfig(
            name="ddp",
            storage_path=str(trial_dir),
            callbacks=[TuneReportCallback()],
            failure_config=ray.train.FailureConfig(max_failures=0),
        ),
    )
    trainer.fit()


def ddp_trainable(base: dict[str, Any], sweep: dict[str, Any], prepared: dict[str, Any]):
    """The Tuner's trainable for `resources.workers > 1`: the workers reserve `resources.cpu`/`gpu` each;
    the driver (and the Train controller) only waits, so it holds no CPU (Tune refuses an all-zero request,
    hence a token byte of memory)."""
    from ray import tune

    trainable = tune.with_parameters(run_ddp_trial, base=base, sweep=sweep, prepared=prepared)
    return tune.with_resources(trainable, {"cpu": 0, "memory": 1})
