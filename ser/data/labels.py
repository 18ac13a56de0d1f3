"""The canonical emotion vocabulary and the aliases corpora use for it.

Corpora spell the same emotion differently (RAVDESS "fearful", CREMA-D "FEA", TESS "fear"); mapping
them to one vocabulary is what lets merged corpora share class indices.
"""

from __future__ import annotations

from collections.abc import Iterable

CANONICAL_LABELS: tuple[str, ...] = (
    "neutral",
    "calm",
    "happy",
    "sad",
    "angry",
    "fearful",
    "disgust",
    "surprised",
)

_ALIASES: dict[str, str] = {
    "neu": "neutral",
    "neutrality": "neutral",
    "cal": "calm",
    "hap": "happy",
    "happiness": "happy",
    "joy": "happy",
    "sadness": "sad",
    "ang": "angry",
    "anger": "angry",
    "fea": "fearful",
    "fear": "fearful",
    "dis": "disgust",
    "disgusted": "disgust",
    "sur": "surprised",
    "surprise": "surprised",
    "ps": "surprised",
    "pleasant_surprise": "surprised",
    "pleasant_surprised": "surprised",
}


def _key(name: str) -> str:
    return name.strip().lower().replace("-", "_").replace(" ", "_")


def canonical_label(name: str) -> str | None:
    """The canonical spelling of an emotion name or code, or None when it is not one we know."""
    key = _key(name)
    if key in CANONICAL_LABELS:
        return key
    return _ALIASES.get(key)


def sort_labels(labels: Iterable[str]) -> list[str]:
    """Distinct labels, canonical ones in canonical order first, any others alphabetically after."""
    distinct = set(labels)
    known = [label for label in CANONICAL_LABELS if label in distinct]
    return known + sorted(distinct.difference(CANONICAL_LABELS))
