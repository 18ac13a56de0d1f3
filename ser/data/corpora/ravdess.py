"""RAVDESS speech: `Actor_XX/03-01-EE-II-SS-RR-AA.wav` (Livingstone & Russo 2018).

Name fields: modality - vocal channel - emotion - intensity - statement - repetition - actor. Only
audio-only (03) speech (01) files are used; video modalities and song files are skipped with a reason.
Odd actors are male, even actors female.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

from ser.config import CorpusSpec, SyntheticConfig
from ser.data.corpora.named import Named, scan_named
from ser.data.types import CorpusScan

NAME = "ravdess"
EXPECTED = "Actor_XX/03-01-EE-II-SS-RR-AA.wav"
PATTERN = re.compile(r"^(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})$")
EMOTIONS = {
    "01": "neutral",
    "02": "calm",
    "03": "happy",
    "04": "sad",
    "05": "angry",
    "06": "fearful",
    "07": "disgust",
    "08": "surprised",
}
MODALITIES = {"01": "full audio-video", "02": "video-only"}


def _problem(modality: str, channel: str, emotion: str, actor: str) -> Optional[str]:
    if modality in MODALITIES:
        return f"video file modality {modality} ({MODALITIES[modality]}), only 03 audio-only is used"
    if modality != "03":
        return f"unknown modality code {modality}"
    if channel == "02":
        return "song (vocal channel 02), not speech"
    if channel != "01":
        return f"unknown vocal channel code {channel}"
    if emotion not in EMOTIONS:
        return f"unknown emotion code {emotion}"
    if actor == "00":
        return "actor code 00 is not a RAVDESS actor"
    return None


def scan(
    spec: CorpusSpec,
    *,
    check_audio: bool = True,
    progress: bool = False,
    synthetic: Optional[SyntheticConfig] = None,
) -> CorpusScan:
    """Every RAVDESS-named file anywhere below the root (the Kaggle layout nests them in Actor_XX)."""
    return scan_named(NAME, spec.root, EXPECTED, parse, check_audio=check_audio, progress=progress)


def parse(path: Path, root: Path) -> Named | str:
    match = PATTERN.match(path.stem)
    if match is None:
        return f"name does not match the RAVDESS pattern {EXPECTED.split('/')[1]}"
    modality, channel, emotion, _intensity, _statement, _repetition, actor = match.groups()
    problem = _problem(modality, channel, emotion, actor)
    if problem:
        return problem
    gender = "m" if int(actor) % 2 == 1 else "f"
    return Named(key=path.stem, speaker=actor, label=EMOTIONS[emotion], gender=gender)
