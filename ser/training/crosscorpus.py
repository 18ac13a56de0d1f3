"""`ser crosscorpus`: train on each corpus, test on every other, and write the UA matrix (CSV, JSON and a
heatmap). Does a model trained on acted English speech survive another corpus?

Each corpus is `NAME[:ROOT]` (its packaged preset `data/NAME` applies) or a YAML file holding one corpus's
data config (tagged by the file name: two synthetic seeds, a merge of corpora, a label map of its own).
For every corpus A:
- the diagonal cell is `ser fit` on A over its speaker folds (`data.fold=all` unless set): the mean test
  UA of within-corpus speaker-independent CV;
- an off-diagonal cell (A, B) scores each of A's fold checkpoints on the whole of B, on the classes both
  have (`ser evaluate`'s cross-corpus rules), and averages their UA.
Every run and evaluation directory is kept, so `ser report` works on any of them.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf

from ser.config import CHOICES, ConfigError, load_config, resolve_config_file
from ser.config.load import PRESET_DIR
from ser.data.dataset import build_dataset
from ser.inference.checkpoint import read_checkpoint
from ser.report.plots import plot_crosscorpus
from ser.training.evaluate import (
    SELECTION_KEYS,
    SOURCE_KEYS,
    evaluate_prepared,
    evaluation_config,
    evaluation_layers,
    prepare_evaluation,
)
from ser.training.fit import fit_folds

TAG = re.compile(r"^[A-Za-z0-9_.-]+$")
# Global overrides that also choose the evaluation data (the shared label set), not only the training.
EVALUATION_KEYS = ("data.labels", "data.label_map")


@dataclass(frozen=True)
class CorpusEntry:
    """One corpus of the matrix: its tag, and the configs and overrides that select its data."""

    tag: str
    configs: tuple[str, ...] = ()
    overrides: tuple[str, ...] = ()


def parse_corpus(text: str) -> CorpusEntry:
    """`NAME[:ROOT]` (preset data/NAME + data.corpus + data.root) or a YAML file of one corpus's data."""
    if text.endswith((".yaml", ".yml")):
        path = resolve_config_file(text)
        return CorpusEntry(tag=Path(text).stem, configs=(str(path),))
    name, _, root = text.partition(":")
    if name not in CHOICES["data.corpus"]:
        raise ConfigError(
            f"corpus {text!r}: {name!r} is not one of {list(CHOICES['data.corpus'])} "
            "(give NAME[:ROOT] or a YAML file of its data config)"
        )
    preset = PRESET_DIR / "data" / f"{name}.yaml"
    overrides = [f"data.corpus={name}", *([f"data.root={root}"] if root else [])]
    return CorpusEntry(
        tag=name, configs=(f"data/{name}",) if preset.is_file() else (), overrides=tuple(overrides)
    )


def check_entries(entries: Sequence[CorpusEntry]) -> None:
    if len(entries) < 2:
        raise ConfigError("a cross-corpus matrix needs at least two corpora")
    tags = [e.tag for e in entries]
    repeated = sorted({t for t in tags if tags.count(t) > 1})
    if repeated:
        raise ConfigError(
            f"corpus {repeated[0]!r} is given twice; give each its own YAML file (its name becomes the tag)"
        )
    bad = [t for t in tags if not TAG.match(t)]
    if bad:
        raise ConfigError(f"corpus tag {bad[0]!r}: use letters, digits, '_', '-' or '.'")


@dataclass
class Cell:
    train: str
    test: str
    uar: list[float] = field(default_factory=list)  # one per model (fold checkpoint) or per CV fold
    classes: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    absent: list[str] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)

    @property
    def mean(self) -> float:
        return float(np.mean(self.uar)) if self.uar else float("nan")

    @property
    def sd(self) -> float:
        return float(np.std(self.uar, ddof=1)) if len(self.uar) > 1 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "train": self.train,
            "test": self.test,
            "uar_mean": self.mean,
            "uar_sd": self.sd,
            "uar": self.uar,
            "models": len(self.uar),
            "classes": self.classes,
            "dropped_from_test_data": self.dropped,
            "model_classes_absent": self.absent,
            "paths": self.paths,
        }


def _evaluation_overrides(overrides: Sequence[str]) -> list[str]:
    return [o for o in overrides if o.split("=", 1)[0].startswith(EVALUATION_KEYS)]


def _data_only(layers: DictConfig) -> DictConfig:
    """The evaluation layers of a corpus: which data and which labels, never audio/feature settings (those
    are the checkpoint's)."""
    keep = {*SOURCE_KEYS, *SELECTION_KEYS}
    data = layers.get("data", {}) or {}
    return OmegaConf.create({"data": {k: v for k, v in data.items() if k in keep}})


def train_config(
    entry: CorpusEntry, configs: Sequence[str], overrides: Sequence[str], out: Path
) -> DictConfig:
    asked_fold = any(o.startswith("data.fold=") for o in (*overrides, *entry.overrides))
    return load_config(
        [*configs, *entry.configs],
        [
            *overrides,
            *entry.overrides,
            *([] if asked_fold else ["data.fold=all"]),
            f"trainer.output_dir={out / 'runs'}",
            f"trainer.run_name={entry.tag}",
        ],
    )


def cross_corpus(
    entries: Sequence[CorpusEntry],
    configs: Sequence[str] = (),
    overrides: Sequence[str] = (),
    out_dir: str | Path | None = None,
    console: Any = None,
) -> dict[str, Any]:
    """Fit every corpus, score every fold checkpoint on every other corpus; write the matrix files."""
    from rich.console import Console

    console = console or Console(stderr=True)
    check_entries(entries)
    out = Path(out_dir) if out_dir else Path("runs") / f"crosscorpus-{datetime.now():%Y%m%d-%H%M%S}"
    out.mkdir(parents=True, exist_ok=True)
    cfgs = {e.tag: train_config(e, configs, overrides, out) for e in entries}  # all checked before training
    for tag, cfg in cfgs.items():
        if cfg.model.name == "svm":
            raise ConfigError(
                f"invalid config key 'model.name': svm keeps no checkpoint to test on {tag}'s peers"
            )
        build_dataset(cfg.data, check_audio=False)  # a missing root or empty corpus fails before training
    eval_layers = {
        e.tag: _data_only(evaluation_layers(e.configs, [*e.overrides, *_evaluation_overrides(overrides)]))
        for e in entries
    }
    cells: dict[tuple[str, str], Cell] = {}
    for entry in entries:
        console.print(f"[bold]training on {entry.tag}[/bold]")
        run = fit_folds(cfgs[entry.tag], console=console)
        diagonal = Cell(entry.tag, entry.tag, paths=[str(run.run_dir)])
        diagonal.uar = [f.test["uar"] for f in run.folds if f.test is not None]
        diagonal.classes = len(run.metrics["labels"])
        cells[(entry.tag, entry.tag)] = diagonal
        checkpoints = [f.checkpoint for f in run.folds if f.checkpoint]
        for other in entries:
            if other.tag == entry.tag:
                continue
            cells[(entry.tag, other.tag)] = _score(
                checkpoints, entry.tag, other.tag, eval_layers[other.tag], out
            )
            cell = cells[(entry.tag, other.tag)]
            console.print(
                f"  {entry.tag} -> {other.tag}: UA {cell.mean:.3f} ± {cell.sd:.3f} on {cell.classes} classes"
            )
    return write_matrix([e.tag for e in entries], cells, out)


def _score(checkpoints: Sequence[str], train: str, test: str, layers: DictConfig, out: Path) -> Cell:
    """UA of each checkpoint on the whole of the other corpus, prepared once for all of them."""
    cell = Cell(train, test)
    prepared = match = None
    for path in checkpoints:
        ckpt = read_checkpoint(path)
        cfg, cross = evaluation_config(ckpt, layers)
        if not cross:
            raise ConfigError(f"corpora {train} and {test} select the same data; give them different data")
        if prepared is None:
            prepared, match = prepare_evaluation(ckpt, cfg, whole=True)
        fold = Path(path).parent.name
        result = evaluate_prepared(
            ckpt,
            cfg,
            prepared,
            out / "evals" / f"{train}_on_{test}" / fold,
            whole=True,
            match=match,
            cross=True,
        )
        cell.uar.append(float(result["metrics"]["summary"]["test/uar"]["mean"]))
        cell.paths.append(str(result["out_dir"]))
    if match is not None:  # None: the run kept no checkpoint; the cell stays empty (n/a)
        cell.classes, cell.dropped, cell.absent = len(match.evaluated), match.dropped, match.absent
    return cell


def write_matrix(tags: Sequence[str], cells: dict[tuple[str, str], Cell], out: Path) -> dict[str, Any]:
    """crosscorpus.csv (UA means, rows = trained on), crosscorpus.json (every cell), crosscorpus.png."""
    n = len(tags)
    mean, sd, classes = np.full((n, n), np.nan), np.zeros((n, n)), np.zeros((n, n))
    for i, a in enumerate(tags):
        for j, b in enumerate(tags):
            cell = cells.get((a, b))
            if cell is not None:
                mean[i, j], sd[i, j], classes[i, j] = cell.mean, cell.sd, cell.classes
    with (out / "crosscorpus.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["trained on \\ tested on", *tags])
        for i, a in enumerate(tags):
            writer.writerow([a, *("" if not np.isfinite(v) else f"{v:.4f}" for v in mean[i])])
    payload = {
        "metric": "test/uar",
        "corpora": list(tags),
        "diagonal": "within-corpus speaker-independent cross-validation (mean over test folds)",
        "off_diagonal": "each fold checkpoint of the row corpus on the whole column corpus (mean over them)",
        "cells": [cell.to_dict() for cell in cells.values()],
    }
    (out / "crosscorpus.json").write_text(json.dumps(payload, indent=2))
    plot_crosscorpus(tags, mean, sd, classes, out / "crosscorpus.png")
    return {"out_dir": out, "tags": list(tags), "mean": mean, "sd": sd, "cells": cells}
