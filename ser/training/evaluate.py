"""`ser evaluate`: score a checkpoint on a corpus / fold with the same trainer factory, result type and
`metrics.json` schema as `ser fit`, and the same plots."""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from ser.config import merge_into, monitor_mode, parse_overrides, read_layers, validate
from ser.data.datamodule import SERDataModule, prepare_data
from ser.data.folds import parse_fold
from ser.inference.checkpoint import CheckpointError, check_same_encoder, read_checkpoint, restore_classifier
from ser.training.fit import write_run
from ser.training.result import FoldResult, Selection
from ser.training.trainer import make_trainer


def _config(
    base: DictConfig, files: Sequence[str], overrides: Sequence[str], default_fold: int
) -> DictConfig:
    cfg = base.copy()
    cfg.data.fold = str(default_fold)
    for item in files:
        for path, layer in read_layers(item):
            cfg = merge_into(cfg, layer, str(path))
    cfg = merge_into(cfg, parse_overrides(overrides), "overrides")
    cfg.trainer.progress_bar = False
    validate(cfg)
    return cfg


def leaked_speakers(info: dict[str, Any], test_speakers: Sequence[str]) -> list[str]:
    """Test speakers the checkpoint saw in training or validation: their scores would be inflated."""
    seen = set(info.get("speakers", {}).get("train", [])) | set(info.get("speakers", {}).get("val", []))
    return sorted(seen.intersection(test_speakers))


def evaluate_checkpoint(
    checkpoint: str | Path,
    config_files: Sequence[str] = (),
    overrides: Sequence[str] = (),
    out_dir: str | Path | None = None,
) -> dict[str, Any]:
    start = time.perf_counter()
    ckpt = read_checkpoint(checkpoint)
    cfg = _config(ckpt.cfg, config_files, overrides, int(ckpt.info.get("fold", 0)))
    tuned = ckpt.info.get("encoder") if ckpt.kind == "waveform" else None  # carried by the checkpoint
    prepared = prepare_data(cfg, progress=True, encoder=tuned)
    check_same_encoder(ckpt, prepared.encoder)
    if prepared.labels != ckpt.labels:
        raise CheckpointError(
            f"{ckpt.path}: trained on labels {ckpt.labels} but the data has {prepared.labels}; "
            "set data.labels / data.label_map to match"
        )
    out = Path(out_dir) if out_dir else ckpt.path.parent / f"eval-{datetime.now():%Y%m%d-%H%M%S}"
    out.mkdir(parents=True, exist_ok=True)
    metric = str(cfg.trainer.monitor)
    folds = []
    for index in parse_fold(str(cfg.data.fold), len(prepared.folds)):
        fold_start = time.perf_counter()
        dm = SERDataModule(cfg, prepared, index)
        leaked = leaked_speakers(ckpt.info, dm.fold.test)
        if leaked:
            warnings.warn(
                f"fold {index}: test speakers {leaked} were in this checkpoint's training/validation data; "
                "these scores are not speaker-independent",
                stacklevel=2,
            )
        model = restore_classifier(ckpt, cfg)
        trainer = make_trainer(cfg, out, training=False)
        trainer.test(model, datamodule=dm, verbose=False)
        folds.append(
            FoldResult(
                fold=index,
                speakers=dm.split_speakers(),
                sizes=dm.split_sizes(),
                test=dict(model.test_results),
                selection=Selection(metric=metric, mode=monitor_mode(metric), best=None, epoch=None),
                parameters=sum(p.numel() for p in model.net.parameters()),
                wall_seconds=time.perf_counter() - fold_start,
                checkpoint=str(ckpt.path),
                warnings=[*dm.fold.warnings, *([f"leaked test speakers {leaked}"] if leaked else [])],
            )
        )
    metrics = write_run(
        out, cfg, prepared, folds, time.perf_counter() - start, extra={"checkpoint": str(ckpt.path)}
    )
    summary = metrics["summary"]
    print(
        f"WA {summary['test/wa']['mean']:.3f}  UA {summary['test/uar']['mean']:.3f}  "
        f"macro-F1 {summary['test/f1']['mean']:.3f}  over folds {[f.fold for f in folds]}"
    )
    return {"out_dir": out, "metrics": metrics, "folds": folds}
