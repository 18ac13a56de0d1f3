"""TESS: `OAF_angry/OAF_back_angry.wav` (Toronto emotional speech set), two female speakers.

The label is read from the file name's last field, never from the folder: the folder names vary in
case and spelling in circulating copies (OAF_Fear, OAF_Pleasant_surprise, YAF_pleasant_surprised).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

from ser.config import CorpusSpec, SyntheticConfig
from ser.data.corpora.named import Named, scan_named
from ser.data.labels import canonical_label
from ser.data.types import CorpusScan

NAME = "tess"
EXPECTED = "OAF_angry/OAF_back_angry.wav (SPEAKER_word_emotion)"
PATTERN = re.compile(r"^([A-Za-z]+)_([A-Za-z0-9]+(?:_[A-Za-z0-9]+)*?)_([A-Za-z]+(?:_[A-Za-z]+)?)$")
SPEAKER_ALIASES = {"OA": "OAF", "YA": "YAF"}  # a few files in circulating copies drop the F


def _label(stem: str) -> tuple[Optional[str], str]:
    """(canonical label or None, the raw emotion text) from the last one or two underscore fields."""
    parts = stem.split("_")
    if len(parts) >= 4:
        two = canonical_label("_".join(parts[-2:]))  # "pleasant_surprise" spelled out
        if two is not None:
            return two, "_".join(parts[-2:])
    return canonical_label(parts[-1]), parts[-1]


def scan(
    spec: CorpusSpec,
    *,
    check_audio: bool = True,
    progress: bool = False,
    synthetic: Optional[SyntheticConfig] = None,
) -> CorpusScan:
    """TESS-named files anywhere below the root; speaker = first name field, all speakers female."""
    return scan_named(NAME, spec.root, EXPECTED, parse, check_audio=check_audio, progress=progress)


def parse(path: Path, root: Path) -> Named | str:
    if PATTERN.match(path.stem) is None:
        return "name does not match the TESS pattern SPEAKER_word_emotion"
    label, raw = _label(path.stem)
    if label is None:
        return f"unknown emotion '{raw}' in the file name"
    first, rest = path.stem.split("_", 1)
    speaker = SPEAKER_ALIASES.get(first.upper(), first.upper())
    word = rest[: -len(raw) - 1].lower()
    return Named(key=f"{speaker}_{word}_{label}", speaker=speaker, label=label, gender="f")
