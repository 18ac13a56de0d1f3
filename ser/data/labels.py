"""The canonical emotion vocabulary and the aliases corpora use for it.

Corpora spell the same emotion differently (RAVDESS "fearful", CREMA-D "FEA", TESS "fear"); mapping
them to one vocabulary is what lets merged corpora share class indices.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

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


RARE_CLIPS = 3  # a label with at most this many clips ...
RARE_RATIO = 0.1  # ... and under a tenth of the median label's count is probably a typo ("hapy")


def rare_label_warnings(counts: Mapping[str, int], example: Mapping[str, str] | None = None) -> list[str]:
    """A warning per label with very few clips next to the others, with the nearest other label (or known
    emotion name) as the likely intended one: a manifest row labelled `hapy` would otherwise become its
    own one-clip class, silently. `example`: a file per label, named in the warning."""
    import difflib
    import statistics

    if len(counts) < 2:
        return []
    median = statistics.median(counts.values())
    warnings = []
    for label, n in sorted(counts.items()):
        if n > RARE_CLIPS or n >= RARE_RATIO * median:
            continue
        others = [o for o in counts if o != label and counts[o] > RARE_CLIPS]
        close = difflib.get_close_matches(label, [*others, *CANONICAL_LABELS], n=1, cutoff=0.6)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        where = f" (e.g. {example[label]})" if example and label in example else ""
        warnings.append(
            f"label '{label}' has only {n} clip{'s' if n != 1 else ''}{where} (the median label has "
            f"{median:g}), so "
            f"it is a class of its own{hint} (fix the label, map it with data.label_map, or list the "
            "wanted classes in data.labels)"
        )
    return warnings
