"""A sweep trial trained by several DDP workers (`resources.workers > 1`), through Ray Train.

Ray Train V2 runs a distributed job from inside a Tune trial: the Tune trainable here is a small driver
(`run_ddp_trial`) that starts a `TorchTrainer` whose workers each run `ddp_worker`. Every worker trains the
same `build_classifier` model on its shard of the fold (Lightning's DistributedSampler; torchmetrics sync
the validation metrics across workers), reports the validation metrics after every epoch, and
`TuneReportCallback` forwards rank 0's report to Tune, so ASHA sees one result per epoch exactly as in a
single-worker trial. Rank 0 writes the trial's `metrics.json`, `config.yaml` and `fold_K/best.ckpt`
into the Tune trial directory (one node, or storage shared by the nodes).
"""

from __future__ import annotations

import time
import traceback
import warnings
from pathlib import Path
from typing import Any

import torch
from omegaconf import OmegaConf

from ser.data.folds import parse_fold
from ser.sweep.trials import prepared_for, trial_config, trial_dir, write_trial_metrics

WORLD_SIZE_KEY = "ddp/world_size"  # reported with every epoch: what the trial really ran on


def ddp_reporter(sweep: dict[str, Any]):
    """Every worker reports each validation epoch to Ray Train (V2 reports are collective); the metrics
    are already synced across workers, and Tune gets rank 0's, with the trial's rung score."""
    from ser.sweep.schedulers import RungTracker

    tracker = RungTracker.from_sweep(sweep)

    def ddp_report(epoch: int, metrics: dict[str, float], trainer) -> None:
        import ray.train

        ray.train.report({**tracker.add(metrics), "epoch": epoch + 1, WORLD_SIZE_KEY: trainer.world_size})

    return ddp_report


def ddp_worker(config: dict[str, Any]) -> None:
    """One DDP worker: `train_fold` under Ray's DDP strategy; rank 0 writes the trial's metrics.json."""
    import ray
    import ray.train
    from ray.train.lightning import RayDDPStrategy, RayLightningEnvironment, prepare_trainer

    from ser.training.fold import train_fold
    from ser.training.trainer import Distributed

    start = time.perf_counter()
    # the logged epoch metrics are torchmetrics results, already synced across workers
    warnings.filterwarnings("ignore", message=".*sync_dist=True.*")
    torch.set_num_threads(max(1, int(float(config["cpu"]))))
    cfg = trial_config(config["params"], config["base"])
    cfg.data.device_resident = False  # DataLoaders, so that Lightning shards them per worker
    prepared = ray.get(config["prepared"])
    out = Path(config["trial_dir"])
    rank = ray.train.get_context().get_world_rank()
    index = parse_fold(str(cfg.data.fold), len(prepared.folds))[0]
    # a fine-tuned encoder leaves parameters without gradients in some steps (LayerDrop, a chosen layer)
    finetune = cfg.model.name == "ssl" and cfg.model.ssl_mode == "finetune"
    distributed = Distributed(
        strategy=RayDDPStrategy(find_unused_parameters=finetune),
        plugins=[RayLightningEnvironment()],
        accelerator="gpu" if config["gpu"] > 0 else "cpu",
        prepare=prepare_trainer,
    )
    try:
        result = train_fold(
            cfg,
            prepared,
            index,
            out / f"fold_{index}",
            on_epoch=ddp_reporter(config.get("sweep", {})),
            distributed=distributed,
        )
    except Exception as exc:
        if rank == 0:
            write_trial_metrics(out, cfg, prepared, [], start, error=f"{type(exc).__name__}: {exc}")
            (out / "error_traceback.txt").write_text(traceback.format_exc())
        raise
    if rank == 0:
        write_trial_metrics(out, cfg, prepared, [result], start)


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
    cfg = trial_config(params, base)
    out = trial_dir()
    (out / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    data = prepared_for(cfg, prepared or {})
    per_worker = {"CPU": cpu, **({"GPU": gpu} if gpu > 0 else {})}
    trainer = TorchTrainer(
        ddp_worker,
        train_loop_config={
            "params": dict(params),
            "base": base,
            "sweep": {k: sweep.get(k) for k in ("metric", "mode", "rung_metric", "rung_ema") if k in sweep},
            "prepared": ray.put(data),
            "trial_dir": str(out),
            "cpu": cpu,
            "gpu": gpu,
        },
        scaling_config=ray.train.ScalingConfig(
            num_workers=workers, use_gpu=gpu > 0, resources_per_worker=per_worker
        ),
        torch_config=TorchConfig(backend="nccl" if gpu > 0 else "gloo"),
        run_config=ray.train.RunConfig(
            name="ddp",
            storage_path=str(out),
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
