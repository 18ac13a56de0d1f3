"""SAVEE (Surrey Audio-Visual Expressed Emotion): `DC_a01.wav` (Kaggle's flat copy) or `DC/a01.wav` (the
original AudioData folders) (Haq & Jackson 2009).

Four male speakers (DC, JE, JK, KL), seven emotions coded by one or two letters before the sentence
number: a angry, d disgust, f fearful, h happy, n neutral, sa sad, su surprised (15 sentences each, 30
neutral). The same recording found in both layouts is used once.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

from ser.config import CorpusSpec, SyntheticConfig
from ser.data.corpora.named import Named, scan_named
from ser.data.types import CorpusScan

NAME = "savee"
EXPECTED = "DC_a01.wav or DC/a01.wav (speaker, emotion code, sentence number)"
FLAT = re.compile(r"^([A-Za-z]{2})_([a-z]{1,2})(\d{2})$")
NESTED = re.compile(r"^([a-z]{1,2})(\d{2})$")
EMOTIONS = {
    "a": "angry",
    "d": "disgust",
    "f": "fearful",
    "h": "happy",
    "n": "neutral",
    "sa": "sad",
    "su": "surprised",
}
SPEAKERS = ("DC", "JE", "JK", "KL")


def _fields(stem: str, folder: str) -> Optional[tuple[str, str, str]]:
    """(speaker, emotion code, number) from `DC_a01`, or from `a01` inside a `DC` folder."""
    flat = FLAT.match(stem)
    if flat:
        return flat.group(1).upper(), flat.group(2).lower(), flat.group(3)
    nested = NESTED.match(stem)
    if nested and folder.upper() in SPEAKERS:
        return folder.upper(), nested.group(1).lower(), nested.group(2)
    return None


def scan(
    spec: CorpusSpec,
    *,
    check_audio: bool = True,
    progress: bool = False,
    synthetic: Optional[SyntheticConfig] = None,
) -> CorpusScan:
    """SAVEE-named files anywhere below the root, flat or in speaker folders."""
    return scan_named(NAME, spec.root, EXPECTED, parse, check_audio=check_audio, progress=progress)


def parse(path: Path, root: Path) -> Named | str:
    fields = _fields(path.stem, path.parent.name)
    if fields is None:
        return "name does not match the SAVEE pattern DC_a01 (or DC/a01)"
    speaker, code, number = fields
    if speaker not in SPEAKERS:
        return f"speaker {speaker} is not a SAVEE speaker ({', '.join(SPEAKERS)})"
    label = EMOTIONS.get(code)
    if label is None:
        return f"unknown emotion code {code} (expected one of {', '.join(EMOTIONS)})"
    return Named(key=f"{speaker}_{code}{number}", speaker=speaker, label=label, gender="m")
