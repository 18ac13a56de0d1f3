"""Per-utterance test predictions: what per-speaker scores, calibration and embedding plots are made of.

`fold_K/predictions.npz` (written by `ser fit`, sweep trials and `ser evaluate`) holds, row by row in
the same order: utterance `ids`, `speakers`, `genders` ("" where unknown), true class index `y`, class
`probs` [N, C] and, for torch models, the penultimate-layer `embeddings` [N, D] (the input of the final
classifier layer). `labels` names the C classes. Plain numpy arrays, read with `allow_pickle=False`.
"""

from __future__ import annotations

import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ser.config.errors import UserError

FILENAME = "predictions.npz"


@dataclass
class Predictions:
    labels: list[str]
    ids: np.ndarray  # [N] str
    speakers: np.ndarray  # [N] str
    genders: np.ndarray  # [N] str, "" unknown
    y: np.ndarray  # [N] int64: index into labels
    probs: np.ndarray  # [N, C] float32
    embeddings: np.ndarray | None = None  # [N, D] float32
    fold: int = 0

    def __post_init__(self) -> None:
        n = len(self.y)
        for name in ("ids", "speakers", "genders"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"predictions: {len(getattr(self, name))} {name} for {n} rows")
        if self.probs.shape != (n, len(self.labels)):
            raise ValueError(f"predictions: probs {self.probs.shape}, expected ({n}, {len(self.labels)})")
        if self.embeddings is not None and len(self.embeddings) != n:
            raise ValueError(f"predictions: {len(self.embeddings)} embeddings for {n} rows")

    @property
    def pred(self) -> np.ndarray:
        return self.probs.argmax(axis=1)

    def __len__(self) -> int:
        return len(self.y)


def write_predictions(path: Path, predictions: Predictions) -> Path:
    arrays = {
        "labels": np.asarray(predictions.labels, dtype=str),
        "ids": np.asarray(predictions.ids, dtype=str),
        "speakers": np.asarray(predictions.speakers, dtype=str),
        "genders": np.asarray(predictions.genders, dtype=str),
        "y": np.asarray(predictions.y, dtype=np.int64),
        "probs": np.asarray(predictions.probs, dtype=np.float32),
        "fold": np.asarray(predictions.fold, dtype=np.int64),
    }
    if predictions.embeddings is not None:
        arrays["embeddings"] = np.asarray(predictions.embeddings, dtype=np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.npz")
    np.savez_compressed(tmp, **arrays)
    tmp.replace(path)
    return path


class DamagedPredictions(UserError, ValueError):
    """A predictions.npz that cannot be read back (truncated, edited, wrong arrays); names the file."""


def read_predictions(path: Path) -> Predictions:
    """The file's predictions; DamagedPredictions naming it for anything `write_predictions` never writes
    (not a zip, a missing or pickled array, shapes that disagree, labels out of range, NaN)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            predictions = Predictions(
                labels=[str(x) for x in data["labels"]],
                ids=data["ids"],
                speakers=data["speakers"],
                genders=data["genders"],
                y=data["y"],
                probs=data["probs"],
                embeddings=data["embeddings"] if "embeddings" in data.files else None,
                fold=int(data["fold"]),
            )
        _check_values(predictions)
    except UserError:
        raise
    except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile) as exc:
        detail = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise DamagedPredictions(
            f"{path} is damaged ({detail}); score the fold again with `ser evaluate` or remove the file"
        ) from None
    return predictions


def _check_values(p: Predictions) -> None:
    if p.y.dtype.kind not in "iu" or (len(p.y) and not (0 <= p.y.min() and p.y.max() < len(p.labels))):
        raise ValueError(f"class indices y outside 0..{len(p.labels) - 1}")
    if p.probs.dtype.kind != "f" or not np.isfinite(p.probs).all():
        raise ValueError("probs hold NaN, inf or non-numbers")


def concat(parts: Sequence[Predictions]) -> Predictions:
    """The rows of several folds (same labels) as one set, for pooled tables and calibration. Embeddings
    are left out: each fold's come from its own model, so they never share one projection."""
    if not parts:
        raise ValueError("no predictions to concatenate")
    labels = parts[0].labels
    if any(p.labels != labels for p in parts):
        raise ValueError("predictions of different label sets cannot be pooled")
    return Predictions(
        labels=list(labels),
        ids=np.concatenate([p.ids for p in parts]),
        speakers=np.concatenate([p.speakers for p in parts]),
        genders=np.concatenate([p.genders for p in parts]),
        y=np.concatenate([p.y for p in parts]),
        probs=np.concatenate([p.probs for p in parts]),
        fold=-1,
    )
