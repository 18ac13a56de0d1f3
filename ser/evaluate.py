"""`ser evaluate`: score a checkpoint on a corpus / fold, writing the same metrics and plots as `ser fit`."""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
from omegaconf import DictConfig

from ser.checkpoint import CheckpointError, read_checkpoint, restore_classifier
from ser.config import merge_into, parse_overrides, read_yaml, validate
from ser.data.datamodule import SERDataModule, prepare_data
from ser.data.folds import parse_fold
from ser.report import mean_sd, plot_confusion


def _config(
    base: DictConfig, files: Sequence[str], overrides: Sequence[str], default_fold: int
) -> DictConfig:
    cfg = base.copy()
    cfg.data.fold = str(default_fold)
    for f in files:
        cfg = merge_into(cfg, read_yaml(f), str(f))
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
    ckpt = read_checkpoint(checkpoint)
    cfg = _config(ckpt.cfg, config_files, overrides, int(ckpt.info.get("fold", 0)))
    prepared = prepare_data(cfg, progress=True)
    if prepared.labels != ckpt.labels:
        raise CheckpointError(
            f"{ckpt.path}: trained on labels {ckpt.labels} but the data has {prepared.labels}; "
            "set data.labels / data.label_map to match"
        )
    out = Path(out_dir) if out_dir else ckpt.path.parent / f"eval-{datetime.now():%Y%m%d-%H%M%S}"
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for index in parse_fold(str(cfg.data.fold), len(prepared.folds)):
        dm = SERDataModule(cfg, prepared, index)
        leaked = leaked_speakers(ckpt.info, dm.fold.test)
        if leaked:
            warnings.warn(
                f"fold {index}: test speakers {leaked} were in this checkpoint's training/validation data; "
                "these scores are not speaker-independent",
                stacklevel=2,
            )
        model = restore_classifier(ckpt, cfg)
        trainer = L.Trainer(
            accelerator=cfg.trainer.accelerator,
            logger=False,
            enable_progress_bar=False,
            enable_model_summary=False,
        )
        trainer.test(model, datamodule=dm, verbose=False)
        test = dict(model.test_results)
        plot_confusion(
            test["confusion"], prepared.labels, out / f"confusion_matrix_fold{index}.png", f"fold {index}"
        )
        results.append(
            {"fold": index, "test_speakers": list(dm.fold.test), "leaked_speakers": leaked, "test": test}
        )
    confusion = np.sum([r["test"]["confusion"] for r in results], axis=0).tolist()
    plot_confusion(confusion, prepared.labels, out / "confusion_matrix.png", f"{ckpt.path.name}: test")
    metrics = {
        "checkpoint": str(ckpt.path),
        "labels": prepared.labels,
        "folds": results,
        "summary": {f"test/{k}": mean_sd([r["test"][k] for r in results]) for k in ("wa", "uar", "f1")},
        "confusion_total": confusion,
        "skipped": [{"path": s.path, "reason": s.reason} for s in prepared.skipped],
    }
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    summary = metrics["summary"]
    print(
        f"WA {summary['test/wa']['mean']:.3f}  UA {summary['test/uar']['mean']:.3f}  "
        f"macro-F1 {summary['test/f1']['mean']:.3f}  over folds {[r['fold'] for r in results]}"
    )
    return {"out_dir": out, "metrics": metrics}
