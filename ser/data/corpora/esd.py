"""ESD (Emotional Speech Dataset), English part: `0011/Angry/0011_000351.wav` (Zhou et al. 2021).

Ten English speakers 0011-0020 (0001-0010 are the Mandarin part: skipped with that reason), five
emotions from the folder name (Angry, Happy, Neutral, Sad, Surprise), 350 parallel sentences each. The
release's own train/evaluation/test sub-folders (`0011/Angry/train/...`) are read like the flat layout;
that split is not used (folds are made over speakers). The corpus ships no speaker genders, so they are
left unknown.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

from ser.config import CorpusSpec, SyntheticConfig
from ser.data.corpora.named import Named, scan_named
from ser.data.types import CorpusScan

NAME = "esd"
EXPECTED = "0011/Angry/0011_000351.wav (speaker folder, emotion folder, speaker_number)"
STEM = re.compile(r"^(\d{4})_(\d{6})$")
SPEAKER_DIR = re.compile(r"^\d{4}$")
EMOTIONS = {"angry": "angry", "happy": "happy", "neutral": "neutral", "sad": "sad", "surprise": "surprised"}
ENGLISH = range(11, 21)
RELEASE_SPLITS = {"train", "evaluation", "test"}


def scan(
    spec: CorpusSpec,
    *,
    check_audio: bool = True,
    progress: bool = False,
    synthetic: Optional[SyntheticConfig] = None,
) -> CorpusScan:
    """ESD-named files below the root: <speaker>/<Emotion>/[train|evaluation|test/]<speaker>_<number>."""
    return scan_named(NAME, spec.root, EXPECTED, parse, check_audio=check_audio, progress=progress)


def parse(path: Path, root: Path) -> Named | str:
    match = STEM.match(path.stem)
    if match is None:
        return "name does not match the ESD pattern 0011_000351"
    speaker, _number = match.groups()
    parts = path.relative_to(root).parts[:-1]
    if parts and parts[-1].lower() in RELEASE_SPLITS:
        parts = parts[:-1]
    if len(parts) < 2 or not SPEAKER_DIR.match(parts[-2]):
        return "not in a <speaker>/<Emotion>/ folder"
    if parts[-2] != speaker:
        return f"file of speaker {speaker} inside speaker folder {parts[-2]}"
    if int(speaker) not in ENGLISH:
        return f"speaker {speaker} is in ESD's Mandarin part (only 0011-0020 are English)"
    label = EMOTIONS.get(parts[-1].lower())
    if label is None:
        return f"unknown emotion folder {parts[-1]} (expected Angry, Happy, Neutral, Sad, Surprise)"
    return Named(key=path.stem, speaker=speaker, label=label, gender=None)
