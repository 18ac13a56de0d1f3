"""Numbers behind the evaluation report, from per-utterance predictions: UA per speaker, calibration
(reliability bins and ECE), prediction entropy per class, and a 2-D projection of the embeddings with how
well they separate emotions versus speakers. Plain numpy (scikit-learn for t-SNE and silhouettes)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ser.report.metrics import classification_metrics
from ser.report.predictions import Predictions


@dataclass
class SpeakerScore:
    speaker: str
    gender: str
    n: int
    uar: float
    wa: float
    classes: int  # classes this speaker has utterances of (UA averages over them)


def per_speaker(pred: Predictions) -> list[SpeakerScore]:
    """UA and WA of each speaker's utterances, worst UA first."""
    scores = []
    guess = pred.pred
    for speaker in sorted(set(pred.speakers.tolist())):
        mask = pred.speakers == speaker
        m = classification_metrics(pred.y[mask], guess[mask], pred.labels)
        present = sum(r is not None for r in m["per_class_recall"].values())  # type: ignore[union-attr]
        gender = str(pred.genders[mask][0]) if mask.any() else ""
        scores.append(
            SpeakerScore(speaker, gender, int(mask.sum()), float(m["uar"]), float(m["wa"]), present)
        )
    return sorted(scores, key=lambda s: (s.uar, s.speaker))


@dataclass
class Reliability:
    edges: np.ndarray  # [B + 1] bin edges of the confidence (top probability)
    count: np.ndarray  # [B] utterances per bin
    confidence: np.ndarray  # [B] mean confidence per bin (nan where empty)
    accuracy: np.ndarray  # [B] accuracy per bin (nan where empty)
    ece: float  # expected calibration error: sum_b n_b / N * |accuracy_b - confidence_b|
    mce: float  # the largest gap over non-empty bins


def reliability(probs: np.ndarray, y: np.ndarray, bins: int = 10) -> Reliability:
    """Equal-width confidence bins of the top-class probability (Guo et al. 2017)."""
    probs = np.asarray(probs, dtype=np.float64)
    confidence = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == np.asarray(y)).astype(np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    count = np.bincount(which, minlength=bins).astype(np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        conf = np.bincount(which, weights=confidence, minlength=bins) / count
        acc = np.bincount(which, weights=correct, minlength=bins) / count
    gaps = np.abs(np.nan_to_num(acc) - np.nan_to_num(conf))
    n = max(len(confidence), 1)
    ece = float(np.sum(count / n * gaps))
    mce = float(gaps[count > 0].max()) if (count > 0).any() else 0.0
    return Reliability(edges, count, conf, acc, ece, mce)


def entropy(probs: np.ndarray) -> np.ndarray:
    """Prediction entropy per row, normalised by log(C): 0 = certain, 1 = uniform."""
    p = np.clip(np.asarray(probs, dtype=np.float64), 1e-12, 1.0)
    return -(p * np.log(p)).sum(axis=1) / np.log(p.shape[1])


def entropy_by_class(pred: Predictions) -> dict[str, np.ndarray]:
    """Normalised entropies of each true class's utterances (classes with none are left out)."""
    h = entropy(pred.probs)
    return {label: h[pred.y == k] for k, label in enumerate(pred.labels) if (pred.y == k).any()}


@dataclass
class Projection:
    points: np.ndarray  # [N, 2]
    method: str  # "PCA (x% of variance)" or "t-SNE"
    emotion_silhouette: float | None  # silhouette of the full embedding grouped by true emotion
    speaker_silhouette: float | None  # ... grouped by speaker


def _silhouette(x: np.ndarray, groups: np.ndarray) -> float | None:
    k = len(set(groups.tolist()))
    if k < 2 or k >= len(groups):
        return None
    from sklearn.metrics import silhouette_score

    return float(silhouette_score(x, groups, metric="euclidean"))


def project(
    embeddings: np.ndarray, labels: Sequence[str], speakers: Sequence[str], method: str = "pca"
) -> Projection:
    """2-D projection of standardised embeddings, with silhouettes by emotion and by speaker (higher =
    tighter, better separated groups; a speaker score above the emotion score means the layer encodes who
    is speaking more than how)."""
    x = np.asarray(embeddings, dtype=np.float64)
    scale = x.std(axis=0)
    x = (x - x.mean(axis=0)) / np.where(scale > 0, scale, 1.0)
    if method == "tsne" and len(x) > 5:
        from sklearn.manifold import TSNE

        perplexity = float(min(30.0, max(2.0, (len(x) - 1) / 3)))
        points = TSNE(n_components=2, init="pca", random_state=0, perplexity=perplexity).fit_transform(x)
        name = "t-SNE"
    else:
        _, s, vt = np.linalg.svd(x, full_matrices=False)
        points = x @ vt[:2].T if vt.shape[0] >= 2 else np.column_stack([x @ vt[:1].T, np.zeros(len(x))])
        share = float((s[:2] ** 2).sum() / max((s**2).sum(), 1e-12))
        name = f"PCA ({share:.0%} of variance)"
    return Projection(
        points=np.asarray(points),
        method=name,
        emotion_silhouette=_silhouette(x, np.asarray(labels)),
        speaker_silhouette=_silhouette(x, np.asarray(speakers)),
    )
