"""`ser evaluate`: score a checkpoint on a corpus / fold with the same trainer factory, result type and
`metrics.json` schema as `ser fit`, and the same plots, plus per-utterance predictions for reports.

On the checkpoint's own corpus it scores a fold (the one it was trained for, or `data.fold=...`). Given
another corpus (`--config data/tess data.root=...`, or any change of corpus, root or synthetic voices)
it is a cross-corpus evaluation:
- the data-selection keys the checkpoint was trained with (labels, label map, folds, partition, subset)
  do not carry over; the evaluation's own config sets them;
- labels are mapped through the evaluation's `data.label_map` and scored on the classes both sides
  have: data labels the model lacks are dropped (listed as skipped), model classes the data lacks are
  named; UA and macro-F1 average over the classes present in the data;
- the whole corpus is the test set, unless a fold is asked for (`data.fold=N` or `all`).
"""

from __future__ import annotations

import os
import time
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from ser.config import DataConfig, merge_into, monitor_mode, parse_overrides, read_layers, to_yaml, validate
from ser.data.datamodule import SERDataModule, TensorBatches
from ser.data.dataset import LabelledDataset, build_dataset
from ser.data.folds import parse_fold
from ser.data.prepared import PreparedData, prepare_data
from ser.data.types import Skipped
from ser.inference.checkpoint import (
    CheckpointError,
    LoadedCheckpoint,
    check_same_encoder,
    read_checkpoint,
    restore_classifier,
)
from ser.report.predictions import FILENAME, write_predictions
from ser.training.fit import write_run
from ser.training.predictions import collect_predictions
from ser.training.result import FoldResult, Selection
from ser.training.trainer import make_trainer

WHOLE = "whole_corpus"  # output sub-folder of a whole-corpus evaluation
# What picks the data: a change of any of these (or of the synthetic voices) makes it another corpus.
SOURCE_KEYS = ("corpus", "root", "corpora", "subset", "speaker_regex", "synthetic")
# Chosen for the training data, meaningless for another corpus: reset to the schema defaults there.
SELECTION_KEYS = ("labels", "label_map", "folds", "val_folds", "fold_seed", "fold_by", "partition", "holdout")


@dataclass
class LabelMatch:
    """How the checkpoint's classes and the evaluation data's labels met."""

    evaluated: list[str]  # classes present in the data and known to the model
    dropped: dict[str, int] = field(default_factory=dict)  # data label -> utterances left out
    absent: list[str] = field(default_factory=list)  # model classes with no utterance in the data

    def lines(self) -> list[str]:
        out = [f"evaluated classes ({len(self.evaluated)}): {', '.join(self.evaluated)}"]
        if self.dropped:
            what = ", ".join(f"{label} ({n})" for label, n in self.dropped.items())
            out.append(f"dropped from the data (not classes of the model): {what}")
        if self.absent:
            out.append(
                f"model classes absent from the data: {', '.join(self.absent)}; UA and macro-F1 average over "
                f"the {len(self.evaluated)} classes present (a prediction of an absent class counts as wrong)"
            )
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"evaluated": self.evaluated, "dropped": self.dropped, "absent": self.absent}


def leaked_speakers(info: dict[str, Any], test_speakers: Sequence[str]) -> list[str]:
    """Test speakers the checkpoint saw in training or validation: their scores would be inflated."""
    seen = set(info.get("speakers", {}).get("train", [])) | set(info.get("speakers", {}).get("val", []))
    return sorted(seen.intersection(test_speakers))


# -------------------------------------------------------------------------------------------- config
def evaluation_layers(files: Sequence[str], overrides: Sequence[str]) -> DictConfig:
    """The evaluation's own settings (config files, then overrides), merged without the schema."""
    layers = OmegaConf.create({})
    for item in files:
        for path, layer in read_layers(item):
            layers = merge_into(layers, layer, str(path))
    return merge_into(layers, parse_overrides(overrides), "overrides")


def _source(data: DictConfig) -> dict[str, Any]:
    values = OmegaConf.to_container(data, resolve=True)
    source = {k: values.get(k) for k in SOURCE_KEYS}  # type: ignore[union-attr]
    if source["root"]:
        source["root"] = os.path.abspath(os.path.expanduser(str(source["root"])))
    return source


def evaluation_config(ckpt: LoadedCheckpoint, layers: DictConfig) -> tuple[DictConfig, bool]:
    """(the resolved config, whether it names another corpus than the checkpoint's)."""
    candidate = merge_into(ckpt.cfg.copy(), layers, "evaluation")
    cross = _source(candidate.data) != _source(ckpt.cfg.data)
    base = ckpt.cfg.copy()
    if cross:
        defaults = OmegaConf.structured(DataConfig)
        keys = list(SELECTION_KEYS)
        if OmegaConf.select(layers, "data.corpus") is not None or OmegaConf.select(layers, "data.corpora"):
            keys += ["root", "speaker_regex", "subset", "corpora"]  # another adapter: nothing carries over
        for key in keys:
            base.data[key] = defaults[key]
    cfg = merge_into(base, layers, "evaluation")
    cfg.trainer.progress_bar = False
    if OmegaConf.select(layers, "data.fold") is None:
        cfg.data.fold = str(int(ckpt.info.get("fold", 0)))
    validate(cfg)
    return cfg, cross


# ------------------------------------------------------------------------------------------------ data
def match_labels(data: LabelledDataset, model_labels: Sequence[str]) -> tuple[LabelledDataset, LabelMatch]:
    """The data restricted to the model's classes, indexed in the model's order; CheckpointError when they
    share no class."""
    known = set(model_labels)
    counts = Counter(u.label for u in data.utterances)
    dropped = {label: counts[label] for label in sorted(counts) if label not in known}
    evaluated = [label for label in model_labels if counts[label] > 0]
    if not evaluated:
        raise CheckpointError(
            f"the model's classes {list(model_labels)} and the data's labels {sorted(counts)} share none; "
            "map them with data.label_map (e.g. data.label_map.anger=angry)"
        )
    kept = [u for u in data.utterances if u.label in known]
    left_out = [
        Skipped(u.path, f"label '{u.label}' is not a class of the model {list(model_labels)}")
        for u in data.utterances
        if u.label not in known
    ]
    absent = [label for label in model_labels if counts[label] == 0]
    dataset = LabelledDataset(
        utterances=kept,
        labels=list(model_labels),
        skipped=[*data.skipped, *left_out],
        warnings=list(data.warnings),
    )
    return dataset, LabelMatch(evaluated=evaluated, dropped=dropped, absent=absent)


def prepare_evaluation(
    ckpt: LoadedCheckpoint, cfg: DictConfig, whole: bool
) -> tuple[PreparedData, LabelMatch]:
    """Scan, harmonise and featurise the evaluation data in the checkpoint's label space."""
    data = build_dataset(cfg.data, check_audio=False, progress=True)
    dataset, match = match_labels(data, ckpt.labels)
    tuned = ckpt.info.get("encoder") if ckpt.kind == "waveform" else None  # a fine-tuned encoder it carries
    prepared = prepare_data(cfg, progress=True, dataset=dataset, make_folds=not whole, encoder=tuned)
    check_same_encoder(ckpt, prepared.encoder)
    return prepared, match


# ------------------------------------------------------------------------------------------- scoring
def trained_epochs(ckpt: LoadedCheckpoint) -> int:
    """How many epochs the evaluated model trained: the run's metrics.json beside the checkpoint when it
    lists this checkpoint (`fold_K/best.ckpt` of a 5-epoch run whose best epoch was 3 trained 5),
    else the epochs stored in the checkpoint itself (up to the epoch it was saved at)."""
    import json

    here = ckpt.path.resolve()
    for folder in (here.parent, here.parent.parent):
        try:
            folds = json.loads((folder / "metrics.json").read_text()).get("folds", [])
        except (OSError, ValueError, AttributeError):
            continue
        for fold in folds if isinstance(folds, list) else []:
            path = fold.get("checkpoint") if isinstance(fold, dict) else None
            # the run's own folder names (fold_K/best.ckpt): its paths are relative to where it ran
            if path and Path(path).parts[-2:] == here.parts[-2:] and isinstance(fold.get("epochs"), int):
                return int(fold["epochs"])
    return ckpt.epochs


def same_voices(ckpt: LoadedCheckpoint, cfg: DictConfig) -> bool:
    """False only where equal speaker names are different people: synthetic corpora of other voices
    (another seed or voice settings name their speakers s01, s02, ... all the same)."""
    trained, evaluated = ckpt.cfg.data, cfg.data
    synthetic = trained.corpus == evaluated.corpus == "synthetic" and not trained.root and not evaluated.root
    return not (synthetic and trained.synthetic != evaluated.synthetic)


def _whole_corpus(
    ckpt: LoadedCheckpoint, cfg: DictConfig, prepared: PreparedData, out: Path, metric: str
) -> FoldResult:
    start = time.perf_counter()
    speakers = sorted(set(prepared.speakers))
    leaked = leaked_speakers(ckpt.info, speakers) if same_voices(ckpt, cfg) else []
    if leaked:
        warnings.warn(
            f"speakers {leaked} were in this checkpoint's training/validation data; the whole-corpus "
            "score is not speaker-independent",
            stacklevel=3,
        )
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        x = torch.from_numpy(np.asarray(prepared.x, dtype=np.float32))
    batches = TensorBatches(x, torch.from_numpy(prepared.y), int(cfg.data.batch_size), shuffle=False)
    model = restore_classifier(ckpt, cfg)
    make_trainer(cfg, out, training=False).test(model, dataloaders=batches, verbose=False)
    rows = np.arange(len(prepared.y))
    write_predictions(
        out / WHOLE / FILENAME, collect_predictions(model, prepared, rows, 0, int(cfg.data.batch_size))
    )
    return FoldResult(
        fold=0,
        speakers={"train": [], "val": [], "test": speakers},
        sizes={"train": 0, "val": 0, "test": len(rows)},
        test=dict(model.test_results),
        selection=Selection(metric=metric, mode=monitor_mode(metric), best=None, epoch=None),
        epochs=trained_epochs(ckpt),
        parameters=sum(p.numel() for p in model.net.parameters()),
        wall_seconds=time.perf_counter() - start,
        checkpoint=str(ckpt.path),
        warnings=[f"leaked test speakers {leaked}"] if leaked else [],
    )


def _fold(
    ckpt: LoadedCheckpoint, cfg: DictConfig, prepared: PreparedData, index: int, out: Path, metric: str
) -> FoldResult:
    start = time.perf_counter()
    dm = SERDataModule(cfg, prepared, index)
    leaked = leaked_speakers(ckpt.info, dm.fold.test) if same_voices(ckpt, cfg) else []
    if leaked:
        warnings.warn(
            f"fold {index}: test speakers {leaked} were in this checkpoint's training/validation data; "
            "these scores are not speaker-independent",
            stacklevel=3,
        )
    model = restore_classifier(ckpt, cfg)
    make_trainer(cfg, out, training=False).test(model, datamodule=dm, verbose=False)
    rows = np.sort(dm.test_idx)
    write_predictions(
        out / f"fold_{index}" / FILENAME,
        collect_predictions(model, prepared, rows, index, int(cfg.data.batch_size)),
    )
    return FoldResult(
        fold=index,
        speakers=dm.split_speakers(),
        sizes=dm.split_sizes(),
        test=dict(model.test_results),
        selection=Selection(metric=metric, mode=monitor_mode(metric), best=None, epoch=None),
        epochs=trained_epochs(ckpt),
        parameters=sum(p.numel() for p in model.net.parameters()),
        wall_seconds=time.perf_counter() - start,
        checkpoint=str(ckpt.path),
        warnings=[*dm.fold.warnings, *([f"leaked test speakers {leaked}"] if leaked else [])],
    )


def evaluate_prepared(
    ckpt: LoadedCheckpoint,
    cfg: DictConfig,
    prepared: PreparedData,
    out: Path,
    *,
    whole: bool,
    match: LabelMatch,
    cross: bool,
    wall_start: float | None = None,
) -> dict[str, Any]:
    """Score `ckpt` on prepared data (the whole of it, or the folds `data.fold` names) and write the
    evaluation directory: metrics.json, config.yaml, confusion matrix, predictions per fold."""
    wall_start = time.perf_counter() if wall_start is None else wall_start
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.yaml").write_text(to_yaml(cfg))
    metric = str(cfg.trainer.monitor)
    if whole:
        folds = [_whole_corpus(ckpt, cfg, prepared, out, metric)]
    else:
        indices = parse_fold(str(cfg.data.fold), len(prepared.folds))
        folds = [_fold(ckpt, cfg, prepared, index, out, metric) for index in indices]
    extra = {
        "checkpoint": str(ckpt.path),
        "evaluation": {
            "cross_corpus": cross,
            "whole_corpus": whole,
            "trained_on": _describe(ckpt.cfg.data),
            "evaluated_on": _describe(cfg.data),
            "labels": match.to_dict(),
        },
    }
    metrics = write_run(out, cfg, prepared, folds, time.perf_counter() - wall_start, extra=extra)
    return {"out_dir": out, "metrics": metrics, "folds": folds, "labels": match, "cross_corpus": cross}


def _describe(data: DictConfig) -> str:
    """A short name of the data a config selects: `ravdess (/data/ravdess)`, `synthetic (seed 1)`."""
    if data.corpora:
        return " + ".join(str(spec.name) for spec in data.corpora)
    if data.corpus == "synthetic" and not data.root:
        return f"synthetic (seed {data.synthetic.seed})"
    return f"{data.corpus} ({data.root})" if data.root else str(data.corpus)


def evaluate_checkpoint(
    checkpoint: str | Path,
    config_files: Sequence[str] = (),
    overrides: Sequence[str] = (),
    out_dir: str | Path | None = None,
) -> dict[str, Any]:
    """`ser evaluate CKPT [--config ...] [key=value ...]`; prints what was scored and the scores."""
    start = time.perf_counter()
    ckpt = read_checkpoint(checkpoint)
    layers = evaluation_layers(config_files, overrides)
    cfg, cross = evaluation_config(ckpt, layers)
    whole = cross and OmegaConf.select(layers, "data.fold") is None
    prepared, match = prepare_evaluation(ckpt, cfg, whole)
    print(f"trained on {_describe(ckpt.cfg.data)}; evaluating on {_describe(cfg.data)}")
    for line in match.lines():
        print(line)
    out = Path(out_dir) if out_dir else ckpt.path.parent / f"eval-{datetime.now():%Y%m%d-%H%M%S}"
    result = evaluate_prepared(
        ckpt, cfg, prepared, out, whole=whole, match=match, cross=cross, wall_start=start
    )
    summary = result["metrics"]["summary"]
    where = "the whole corpus" if whole else f"folds {[f.fold for f in result['folds']]}"
    print(
        f"WA {summary['test/wa']['mean']:.3f}  UA {summary['test/uar']['mean']:.3f}  "
        f"macro-F1 {summary['test/f1']['mean']:.3f}  over {where}"
    )
    return result
