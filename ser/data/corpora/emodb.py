"""EMO-DB (Berlin Database of Emotional Speech): `wav/03a01Fa.wav` (Burkhardt et al. 2005).

Name fields: speaker (2 digits) - text code (a01..b10) - emotion letter - version letter. Ten actors
(five male, five female), seven emotions named by their German initials: W Wut (angry), L Langeweile
(boredom), E Ekel (disgust), A Angst (fearful), F Freude (happy), T Trauer (sad), N neutral.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

from ser.config import CorpusSpec, SyntheticConfig
from ser.data.corpora.named import Named, scan_named
from ser.data.types import CorpusScan

NAME = "emodb"
EXPECTED = "wav/03a01Fa.wav (speaker, text, emotion letter, version)"
PATTERN = re.compile(r"^(\d{2})([ab]\d{2})([A-Za-z])([a-z])$")
EMOTIONS = {
    "W": "angry",
    "L": "boredom",
    "E": "disgust",
    "A": "fearful",
    "F": "happy",
    "T": "sad",
    "N": "neutral",
}
# The corpus documentation: actors 03, 10, 11, 12, 15 are male; 08, 09, 13, 14, 16 female.
GENDERS = {
    "03": "m",
    "08": "f",
    "09": "f",
    "10": "m",
    "11": "m",
    "12": "m",
    "13": "f",
    "14": "f",
    "15": "m",
    "16": "f",
}


def scan(
    spec: CorpusSpec,
    *,
    check_audio: bool = True,
    progress: bool = False,
    synthetic: Optional[SyntheticConfig] = None,
) -> CorpusScan:
    """Every EMO-DB-named file below the root (the release keeps them in wav/)."""
    return scan_named(NAME, spec.root, EXPECTED, parse, check_audio=check_audio, progress=progress)


def parse(path: Path, root: Path) -> Named | str:
    match = PATTERN.match(path.stem)
    if match is None:
        return "name does not match the EMO-DB pattern 03a01Fa"
    speaker, _text, letter, _version = match.groups()
    if speaker not in GENDERS:
        return f"speaker {speaker} is not an EMO-DB actor ({', '.join(sorted(GENDERS))})"
    label = EMOTIONS.get(letter)
    if label is None:
        return f"unknown emotion letter {letter} (expected one of {''.join(EMOTIONS)})"
    return Named(key=path.stem, speaker=speaker, label=label, gender=GENDERS[speaker])
