"""Writing the synthetic corpus in a real corpus's file naming (RAVDESS, CREMA-D, TESS, EMO-DB, IEMOCAP
with its label files, SAVEE, ESD, a manifest, a label folder layout), so the real adapters are exercised
on files named as in the wild.

Where a corpus has fewer actors than the synthetic config, it keeps the corpus's own count (with a
`NamingWarning`) and picks synthetic speakers of the right gender; labels a corpus has no code for are
left out with a warning. EMO-DB's boredom has no synthetic voice profile: the synthetic `calm` (low,
slow, soft) is written as boredom (L).
"""

from __future__ import annotations

import csv
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import soundfile as sf
from tqdm import tqdm

from ser.config import SyntheticConfig
from ser.config.errors import disk_full, no_space
from ser.data.synthetic.voice import (
    _COLUMNS,
    _speaker_names,
    check_config,
    speaker_gender,
    speaker_ids,
    synthesize_one,
)
from ser.data.types import CorpusError


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
    """One WAV; a failed write is one line naming the file (libsndfile says only "System error" for a
    full disk, so the free space decides whether to say so)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(str(path), wave, sr, subtype="PCM_16")
    except (OSError, RuntimeError) as exc:
        if disk_full(exc, path.parent):
            raise no_space(path.parent) from exc
        detail = " ".join(str(exc).split()) or type(exc).__name__
        raise CorpusError(f"could not write {path}: {detail}") from exc
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


EMODB_SPEAKERS = ("03", "08", "10", "09", "11", "13", "12", "14", "15", "16")  # m, f, m, f ... as synthetic
EMODB_LETTERS = {
    "angry": "W",
    "calm": "L",  # boredom (Langeweile): the synthetic voice has no boredom profile
    "disgust": "E",
    "fearful": "A",
    "happy": "F",
    "sad": "T",
    "neutral": "N",
}
EMODB_TEXTS = ("a01", "a02", "a04", "a05", "a07", "b01", "b02", "b03", "b09", "b10")
EMODB_VERSIONS = "abcdef"


def _capped(corpus: str, labels: list[str], codes: dict, per_label: int, cap: int) -> list[str]:
    """The labels the corpus has a code for (warning about the rest) and a warning when per_label > cap."""
    dropped = [lab for lab in labels if lab not in codes]
    if dropped:
        _warn(f"{corpus} has no code for {dropped}: left out")
    if per_label > cap:
        _warn(f"{corpus} naming holds {cap} files per (speaker, label): writing {cap} of {per_label}")
    return [lab for lab in labels if lab in codes]


def _emodb_jobs(labels: list[str], per_label: int, n_speakers: int) -> list[Job]:
    """OUT/wav/<actor><text><letter><version>.wav: ten actors, synthetic speakers in gender order."""
    cap = len(EMODB_TEXTS) * len(EMODB_VERSIONS)
    kept = _capped("emodb", labels, EMODB_LETTERS, per_label, cap)
    if n_speakers > len(EMODB_SPEAKERS):
        _warn(f"emodb naming has {len(EMODB_SPEAKERS)} actors: writing {len(EMODB_SPEAKERS)} of {n_speakers}")
    jobs = []
    for s in range(min(n_speakers, len(EMODB_SPEAKERS))):
        for lab in kept:
            for i in range(min(per_label, cap)):
                text, version = EMODB_TEXTS[i % len(EMODB_TEXTS)], EMODB_VERSIONS[i // len(EMODB_TEXTS)]
                name = f"{EMODB_SPEAKERS[s]}{text}{EMODB_LETTERS[lab]}{version}.wav"
                jobs.append((s, lab, i, Path("wav") / name))
    return jobs


IEMOCAP_CODES = {
    "neutral": "neu",
    "happy": "hap",
    "sad": "sad",
    "angry": "ang",
    "fearful": "fea",
    "disgust": "dis",
    "surprised": "sur",
}
IEMOCAP_SESSIONS = 5


def _iemocap_dialog(session: int, index: int) -> str:
    """Even utterance indices go to an improvised dialog, odd ones to a scripted one."""
    return f"Ses{session:02d}F_impro01" if index % 2 == 0 else f"Ses{session:02d}M_script01_1"


def _iemocap_code(label: str, index: int) -> str:
    """Half of the happy items are written as excited (`exc`), so the 4-class merge has work to do."""
    if label == "happy" and (index // 2) % 2 == 1:
        return "exc"
    return IEMOCAP_CODES[label]


def _iemocap_jobs(labels: list[str], per_label: int, n_speakers: int) -> list[Job]:
    """OUT/SessionN/sentences/wav/<dialog>/<dialog>_<G><turn>.wav: two speakers (m, f) per session."""
    kept = _capped("iemocap", labels, IEMOCAP_CODES, per_label, 1000)
    most = 2 * IEMOCAP_SESSIONS
    if n_speakers > most:
        _warn(f"iemocap naming has {IEMOCAP_SESSIONS} sessions of 2 actors: writing {most} of {n_speakers}")
    turns: dict[tuple[str, str], int] = {}
    jobs = []
    for s in range(min(n_speakers, most)):
        session, letter = s // 2 + 1, speaker_gender(s).upper()
        for lab in kept:
            for i in range(min(per_label, 1000)):
                dialog = _iemocap_dialog(session, i)
                turn = turns.get((dialog, letter), 0)
                turns[(dialog, letter)] = turn + 1
                rel = Path(
                    f"Session{session}", "sentences", "wav", dialog, f"{dialog}_{letter}{turn:03d}.wav"
                )
                jobs.append((s, lab, i, rel))
    return jobs


SAVEE_SPEAKERS = (("DC", 0), ("JE", 2), ("JK", 4), ("KL", 6))  # four men: synthetic male speakers
SAVEE_CODES = {
    "angry": "a",
    "disgust": "d",
    "fearful": "f",
    "happy": "h",
    "neutral": "n",
    "sad": "sa",
    "surprised": "su",
}


def _savee_jobs(labels: list[str], per_label: int, n_speakers: int) -> list[Job]:
    """OUT/AudioData/<DC|JE|JK|KL>/<code><nn>.wav: the four male speakers; 15 sentences (30 neutral)."""
    kept = _capped("savee", labels, SAVEE_CODES, per_label, 15 if set(labels) - {"neutral"} else 30)
    if n_speakers != len(SAVEE_SPEAKERS):
        _warn(f"savee naming has four (male) speakers: writing 4, not {n_speakers}")
    jobs = []
    for who, s in SAVEE_SPEAKERS:
        for lab in kept:
            for i in range(min(per_label, 30 if lab == "neutral" else 15)):
                jobs.append((s, lab, i, Path("AudioData", who, f"{SAVEE_CODES[lab]}{i + 1:02d}.wav")))
    return jobs


ESD_FOLDERS = {
    "neutral": "Neutral",
    "angry": "Angry",
    "happy": "Happy",
    "sad": "Sad",
    "surprised": "Surprise",
}
ESD_FIRST = {
    "neutral": 1,
    "angry": 351,
    "happy": 701,
    "sad": 1051,
    "surprised": 1401,
}  # numbering per emotion
ESD_SPEAKERS = tuple(f"{n:04d}" for n in range(11, 21))


def _esd_jobs(labels: list[str], per_label: int, n_speakers: int) -> list[Job]:
    """OUT/<0011..0020>/<Emotion>/<speaker>_<number>.wav; 350 sentences per emotion."""
    kept = _capped("esd", labels, ESD_FOLDERS, per_label, 350)
    if n_speakers > len(ESD_SPEAKERS):
        _warn(
            f"esd naming has {len(ESD_SPEAKERS)} English speakers: writing {len(ESD_SPEAKERS)} "
            f"of {n_speakers}"
        )
    jobs = []
    for s in range(min(n_speakers, len(ESD_SPEAKERS))):
        who = ESD_SPEAKERS[s]
        for lab in kept:
            for i in range(min(per_label, 350)):
                name = f"{who}_{ESD_FIRST[lab] + i:06d}.wav"
                jobs.append((s, lab, i, Path(who, ESD_FOLDERS[lab], name)))
    return jobs


def _manifest_jobs(labels: list[str], per_label: int, n_speakers: int) -> list[Job]:
    """OUT/clips/<speaker>_<label>_<index>.wav, listed in OUT/manifest.csv."""
    return [
        (s, lab, i, Path("clips") / f"{sid}_{lab}_{i:03d}.wav")
        for s, sid in enumerate(_speaker_names(n_speakers))
        for lab in labels
        for i in range(per_label)
    ]


_NAMERS: dict[str, Callable[[list[str], int, int], list[Job]]] = {
    "folder": _folder_jobs,
    "ravdess": _ravdess_jobs,
    "crema_d": _crema_jobs,
    "tess": _tess_jobs,
    "emodb": _emodb_jobs,
    "iemocap": _iemocap_jobs,
    "savee": _savee_jobs,
    "esd": _esd_jobs,
    "manifest": _manifest_jobs,
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


def _write_iemocap_labels(out: Path, jobs: list[Job], cfg: SyntheticConfig) -> list[Path]:
    """SessionN/dialog/EmoEvaluation/<dialog>.txt in the release's format: a summary line per turn
    (times, name, majority code, dimensional ratings) followed by per-annotator lines the reader ignores."""
    by_dialog: dict[Path, list[str]] = {}
    for _s, lab, i, rel in jobs:
        session_dir, dialog = rel.parts[0], rel.parts[3]
        path = out / session_dir / "dialog" / "EmoEvaluation" / f"{dialog}.txt"
        lines = by_dialog.setdefault(path, [])
        start = 1.0 + 3.0 * (len(lines) // 3)
        code = _iemocap_code(lab, i)
        lines += [
            f"[{start:.4f} - {start + 2.0:.4f}]\t{rel.stem}\t{code}\t[2.5000, 2.5000, 2.5000]",
            f"C-E1:\t{code.title()};\t()",
            "A-E1:\tval 3; act 3; dom  3;\t()",
        ]
    written = []
    header = "% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]\n\n"
    for path, lines in sorted(by_dialog.items()):
        path.parent.mkdir(parents=True, exist_ok=True)
        blocks = ["\n".join(lines[k : k + 3]) for k in range(0, len(lines), 3)]
        path.write_text(header + "\n\n".join(blocks) + "\n")
        written.append(path)
    return written


def _write_manifest(out: Path, jobs: list[Job], cfg: SyntheticConfig) -> list[Path]:
    path = out / "manifest.csv"
    names = _speaker_names(int(cfg.speakers))
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", "label", "speaker", "gender"])
        for s, lab, _i, rel in jobs:
            writer.writerow([rel.as_posix(), lab, names[s], speaker_gender(s)])
    return [path]


def write_corpus(out: str | Path, style: str, cfg: SyntheticConfig) -> list[Path]:
    """Write 16-bit PCM WAVs under `out` in a real corpus's naming, so real adapters read them.

    Names the naming cannot hold (too many files per actor, labels with no code) are left out with a
    `NamingWarning`. Returns the written WAV paths (plus VideoDemographics.csv for crema_d, the
    EmoEvaluation label files for iemocap and manifest.csv for manifest).
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
    if style == "iemocap":
        written += _write_iemocap_labels(out, jobs, cfg)
    if style == "manifest":
        written += _write_manifest(out, jobs, cfg)
    return written
