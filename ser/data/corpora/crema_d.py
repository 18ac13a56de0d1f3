"""CREMA-D: `AudioWAV/1001_DFA_ANG_XX.wav` (Cao et al. 2014), 91 actors, six emotions.

Name fields: actor - sentence - emotion - level. Genders come from `VideoDemographics.csv` when the
corpus folder has it (the Kaggle copy often does not; then gender is None).
"""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Optional

from ser.config import CorpusSpec, SyntheticConfig
from ser.data.corpora.base import ScanBuilder, require_root
from ser.data.corpora.named import Named, add_named
from ser.data.types import CorpusScan

NAME = "crema_d"
EXPECTED = "AudioWAV/1001_DFA_ANG_XX.wav (actor_sentence_emotion_level)"
PATTERN = re.compile(r"^(\d{4})_([A-Za-z]{3})_([A-Za-z]{3})_([A-Za-z]{1,2})$")
EMOTIONS = {
    "ANG": "angry",
    "DIS": "disgust",
    "FEA": "fearful",
    "HAP": "happy",
    "NEU": "neutral",
    "SAD": "sad",
}
LEVELS = {"XX", "LO", "MD", "HI", "X"}
DEMOGRAPHICS = "VideoDemographics.csv"
_SEX = {"male": "m", "female": "f"}


def read_genders(root: Path, warnings: list[str]) -> dict[str, str]:
    """Actor id -> "m"/"f" from the first VideoDemographics.csv below root; {} when there is none."""
    found = sorted(root.rglob(DEMOGRAPHICS))
    if not found:
        return {}
    path = found[0]
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        warnings.append(f"{path}: cannot read ({exc}); genders left unknown")
        return {}
    if not rows or not {"ActorID", "Sex"} <= set(rows[0]):
        warnings.append(f"{path}: expected columns ActorID and Sex; genders left unknown")
        return {}
    genders = {}
    for row in rows:
        sex = _SEX.get((row.get("Sex") or "").strip().lower())
        if sex:
            genders[(row.get("ActorID") or "").strip()] = sex
    return genders


def scan(
    spec: CorpusSpec,
    *,
    check_audio: bool = True,
    progress: bool = False,
    synthetic: Optional[SyntheticConfig] = None,
) -> CorpusScan:
    """CREMA-D-named files anywhere below the root, usually in AudioWAV/."""
    root = require_root(NAME, spec.root, EXPECTED)
    builder = ScanBuilder(NAME, root, EXPECTED)
    genders = read_genders(root, builder.warnings)
    unknown_gender: set[str] = set()

    def parse(path: Path) -> Named | str:
        match = PATTERN.match(path.stem)
        if match is None:
            return "name does not match the CREMA-D pattern 1001_DFA_ANG_XX"
        actor, _sentence, emotion, level = match.groups()
        label = EMOTIONS.get(emotion.upper())
        if label is None:
            return f"unknown emotion code {emotion}"
        if level.upper() not in LEVELS:
            return f"unknown emotion level {level} (expected one of {sorted(LEVELS)})"
        gender = genders.get(actor)
        if genders and gender is None:
            unknown_gender.add(actor)
        return Named(key=path.stem.upper(), speaker=actor, label=label, gender=gender)

    add_named(builder, parse)
    if unknown_gender:
        builder.warnings.append(
            f"{NAME}: actors {', '.join(sorted(unknown_gender))} are not in {DEMOGRAPHICS}; gender unknown"
        )
    return builder.finish(check_audio=check_audio, progress=progress)
