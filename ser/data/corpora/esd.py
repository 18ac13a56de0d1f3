"""ESD (Emotional Speech Dataset), English part: `0011/Angry/0011_000351.wav` (Zhou et al. 2021).

Ten English speakers 0011-0020 (0001-0010 are the Mandarin part: skipped with that reason), five
emotions from the folder name (Angry, Happy, Neutral, Sad, Surprise), 350 parallel sentences each. The
release's own train/evaluation/test sub-folders (`0011/Angry/train/...`) are read like the flat layout;
that split is not used (folds are made over speakers). The corpus ships no speaker genders, so they are
left unknown.
"""

from __future__ import annotations

import re
from typing import Optional

from ser.config import CorpusSpec, SyntheticConfig
from ser.data.corpora.base import ScanBuilder, find_audio_files, require_root
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
    root = require_root(NAME, spec.root, EXPECTED)
    builder = ScanBuilder(NAME, root, EXPECTED)
    for path in find_audio_files(root, builder.skip):
        match = STEM.match(path.stem)
        if match is None:
            builder.skip(path, "name does not match the ESD pattern 0011_000351")
            continue
        speaker, _number = match.groups()
        parts = path.relative_to(root).parts[:-1]
        if parts and parts[-1].lower() in RELEASE_SPLITS:
            parts = parts[:-1]
        if len(parts) < 2 or not SPEAKER_DIR.match(parts[-2]):
            builder.skip(path, "not in a <speaker>/<Emotion>/ folder")
            continue
        if parts[-2] != speaker:
            builder.skip(path, f"file of speaker {speaker} inside speaker folder {parts[-2]}")
            continue
        if int(speaker) not in ENGLISH:
            builder.skip(path, f"speaker {speaker} is in ESD's Mandarin part (only 0011-0020 are English)")
            continue
        label = EMOTIONS.get(parts[-1].lower())
        if label is None:
            builder.skip(
                path, f"unknown emotion folder {parts[-1]} (expected Angry, Happy, Neutral, Sad, Surprise)"
            )
            continue
        builder.add(path, key=path.stem, speaker=speaker, label=label, gender=None)
    return builder.finish(check_audio=check_audio, progress=progress)
