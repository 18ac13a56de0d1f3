"""Writing the synthetic corpus in a real corpus's file naming (RAVDESS, CREMA-D, TESS, a label folder
layout), so the real adapters are exercised on files named as in the wild."""

from __future__ import annotations

import csv
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import soundfile as sf
from tqdm import tqdm

from ser.config import SyntheticConfig
from ser.data.synthetic.voice import (
    _COLUMNS,
    _speaker_names,
    check_config,
    speaker_gender,
    speaker_ids,
    synthesize_one,
)


class NamingWarning(UserWarning):
    """A corpus naming scheme cannot hold everything asked for; what was left out is named."""


RAVDESS_CODES = {lab: i + 1 for i, lab in enumerate(_COLUMNS)}  # 01 neutral ... 08 surprised
CREMA_EMOTIONS = {
    "angry": "ANG",
    "disgust": "DIS",
    "fearful": "FEA",
    "happy": "HAP",
    "neutral": "NEU",
    "sad": "SAD",
}
CREMA_SENTENCES = ("IEO", "TIE", "IOM", "IWW", "TAI", "MTI", "IWL", "ITH", "DFA", "ITS", "TSI", "WSI")
TESS_LABELS = {
    "angry": ("angry", "angry"),
    "disgust": ("disgust", "disgust"),
    "fearful": ("fear", "fear"),
    "happy": ("happy", "happy"),
    "neutral": ("neutral", "neutral"),
    "surprised": ("pleasant_surprise", "ps"),
    "sad": ("sad", "sad"),
}  # canonical -> (folder suffix, file suffix)
TESS_WORDS = (
    "back bar base bath bean beg bite boat bone book bought burn cab calm came cause chain chair chalk "
    "chat check cheek chief choice cool dab date dead death deep dime dip ditch dodge dog doll door fail "
    "fall far fat fit five food gap gas gaze germ get gin goal good goose gun half hall hash hate have "
    "haze hire hit hole home hurl hush jail jar join judge jug juice keen keep keg kick kill king kite "
    "knock late laud lean learn lease lid life limb live loaf long lore lose lot love luck make match "
    "merge mess met mill mob mode mood moon mop mouse nag name near neat nice note numb pad page pain "
    "pass pearl peg perch phone pick pike pole pool puff rag raid rain raise rat reach read red ring "
    "ripe road room rose rot rough rush said sail search seize sell shack shall shawl sheep shirt "
    "should shout size soap soup sour south sub such sure take talk tape team tell thin third thought "
    "thumb time tip tire ton tool tough turn vine voice void vote wag walk wash week wheat when which "
    "whip white wife wire witch yearn yes young youth"
).split()


def _warn(message: str) -> None:
    warnings.warn(message, NamingWarning, stacklevel=3)


def _write_wav(path: Path, wave: np.ndarray, sr: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), wave, sr, subtype="PCM_16")
    return path


def _ravdess_name(actor: int, label: str, index: int) -> str:
    """Index -> (intensity, statement, repetition); neutral has normal intensity only."""
    if label == "neutral":
        intensity, statement, rep = 1, index // 2 + 1, index % 2 + 1
    else:
        intensity, statement, rep = index // 4 + 1, (index // 2) % 2 + 1, index % 2 + 1
    code = RAVDESS_CODES[label]
    return f"03-01-{code:02d}-{intensity:02d}-{statement:02d}-{rep:02d}-{actor:02d}.wav"


def _crema_combos(label: str) -> list[tuple[str, str]]:
    """Neutral: every sentence at XX; emotions: IEO at LO/MD/HI, the other 11 sentences at XX."""
    if label == "neutral":
        return [(s, "XX") for s in CREMA_SENTENCES]
    return [("IEO", lvl) for lvl in ("LO", "MD", "HI")] + [(s, "XX") for s in CREMA_SENTENCES[1:]]


Job = tuple[int, str, int, Path]  # (speaker index, label, utterance index, path relative to OUT)


def _folder_jobs(labels: list[str], per_label: int, n_speakers: int) -> list[Job]:
    """OUT/<label>/<speaker>-<gender>-<index:03d>.wav, matched by SPEAKER_REGEX."""
    return [
        (s, lab, i, Path(lab) / f"{sid}-{speaker_gender(s)}-{i:03d}.wav")
        for s, sid in enumerate(_speaker_names(n_speakers))
        for lab in labels
        for i in range(per_label)
    ]


def _ravdess_jobs(labels: list[str], per_label: int, n_speakers: int) -> list[Job]:
    """OUT/Actor_XX/03-01-EE-II-SS-RR-AA.wav; actor = speaker index + 1, so odd actors are male."""
    if n_speakers > 99:
        _warn(f"ravdess naming has 2-digit actor numbers: writing 99 of {n_speakers} speakers")
    jobs = []
    for lab in labels:
        cap = 4 if lab == "neutral" else 8
        if per_label > cap:
            _warn(f"ravdess naming holds {cap} files per (actor, {lab}): writing {cap} of {per_label}")
        for s in range(min(n_speakers, 99)):
            for i in range(min(per_label, cap)):
                jobs.append((s, lab, i, Path(f"Actor_{s + 1:02d}") / _ravdess_name(s + 1, lab, i)))
    return jobs


def _crema_jobs(labels: list[str], per_label: int, n_speakers: int) -> list[Job]:
    """OUT/AudioWAV/<1001+i>_<SENTENCE>_<EMO>_<LEVEL>.wav; calm and surprised have no code."""
    dropped = [lab for lab in labels if lab not in CREMA_EMOTIONS]
    if dropped:
        _warn(f"crema_d has no code for {dropped}: left out")
    jobs = []
    for lab in (lab for lab in labels if lab in CREMA_EMOTIONS):
        combos = _crema_combos(lab)
        if per_label > len(combos):
            _warn(f"crema_d naming holds {len(combos)} files per (actor, {lab}): writing {len(combos)}")
        for s in range(n_speakers):
            for i, (sentence, level) in enumerate(combos[:per_label]):
                name = f"{1001 + s}_{sentence}_{CREMA_EMOTIONS[lab]}_{level}.wav"
                jobs.append((s, lab, i, Path("AudioWAV") / name))
    return jobs


def _tess_jobs(labels: list[str], per_label: int, n_speakers: int) -> list[Job]:
    """OUT/OAF_<emotion>/OAF_<word>_<emotion>.wav: always two female talkers (synthetic s02, s04)."""
    dropped = [lab for lab in labels if lab not in TESS_LABELS]
    if dropped:
        _warn(f"tess has no code for {dropped}: left out")
    if n_speakers != 2:
        _warn(f"tess naming has two speakers (OAF, YAF): writing 2, not {n_speakers}")
    if per_label > len(TESS_WORDS):
        _warn(f"tess naming has {len(TESS_WORDS)} words: writing {len(TESS_WORDS)} of {per_label}")
    jobs = []
    for s, who in ((1, "OAF"), (3, "YAF")):  # the first two female synthetic speakers
        for lab in (lab for lab in labels if lab in TESS_LABELS):
            folder, suffix = TESS_LABELS[lab]
            for i, word in enumerate(TESS_WORDS[:per_label]):
                jobs.append((s, lab, i, Path(f"{who}_{folder}") / f"{who}_{word}_{suffix}.wav"))
    return jobs


_NAMERS: dict[str, Callable[[list[str], int, int], list[Job]]] = {
    "folder": _folder_jobs,
    "ravdess": _ravdess_jobs,
    "crema_d": _crema_jobs,
    "tess": _tess_jobs,
}
STYLES = tuple(_NAMERS)


def _write_crema_demographics(out: Path, n_speakers: int) -> Path:
    races = ("Caucasian", "African American", "Asian", "Unknown")
    path = out / "VideoDemographics.csv"
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["ActorID", "Age", "Sex", "Race", "Ethnicity"])
        for s in range(n_speakers):
            sex = "Male" if speaker_gender(s) == "m" else "Female"
            ethnicity = "Hispanic" if s % 5 == 4 else "Not Hispanic"
            writer.writerow([1001 + s, 20 + (7 * s) % 50, sex, races[s % len(races)], ethnicity])
    return path


def write_corpus(out: str | Path, style: str, cfg: SyntheticConfig) -> list[Path]:
    """Write 16-bit PCM WAVs under `out` in a real corpus's naming, so real adapters read them.

    Names the naming cannot hold (too many files per actor, labels with no code) are left out with a
    `NamingWarning`. Returns the written WAV paths (plus VideoDemographics.csv for crema_d).
    """
    namer = _NAMERS.get(style)
    if namer is None:
        raise ValueError(f"unknown synthetic corpus style {style!r}; styles: {list(STYLES)}")
    out = Path(out)
    jobs = namer(check_config(cfg), int(cfg.per_label), int(cfg.speakers))
    out.mkdir(parents=True, exist_ok=True)
    sr = int(cfg.sample_rate)
    written = []
    for s, lab, i, rel in tqdm(jobs, desc=f"writing {style}", disable=len(jobs) < 200, leave=False):
        written.append(_write_wav(out / rel, synthesize_one(cfg, s, lab, i), sr))
    if style == "crema_d":
        written.append(_write_crema_demographics(out, len(speaker_ids(cfg))))
    return written
