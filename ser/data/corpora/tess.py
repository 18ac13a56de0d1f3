"""TESS: `OAF_angry/OAF_back_angry.wav` (Toronto emotional speech set), two female speakers.

The label is read from the file name's last field, never from the folder: the folder names vary in
case and spelling in circulating copies (OAF_Fear, OAF_Pleasant_surprise, YAF_pleasant_surprised).
"""

from __future__ import annotations

import re
from typing import Optional

from ser.config import CorpusSpec, SyntheticConfig
from ser.data.corpora.base import ScanBuilder, find_audio_files, require_root
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
    root = require_root(NAME, spec.root, EXPECTED)
    builder = ScanBuilder(NAME, root, EXPECTED)
    for path in find_audio_files(root, builder.skip):
        if PATTERN.match(path.stem) is None:
            builder.skip(path, "name does not match the TESS pattern SPEAKER_word_emotion")
            continue
        label, raw = _label(path.stem)
        if label is None:
            builder.skip(path, f"unknown emotion '{raw}' in the file name")
            continue
        first, rest = path.stem.split("_", 1)
        speaker = SPEAKER_ALIASES.get(first.upper(), first.upper())
        word = rest[: -len(raw) - 1].lower()
        builder.add(path, key=f"{speaker}_{word}_{label}", speaker=speaker, label=label, gender="f")
    return builder.finish(check_audio=check_audio, progress=progress)
