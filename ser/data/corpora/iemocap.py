"""IEMOCAP: `Session1/sentences/wav/Ses01F_impro01/Ses01F_impro01_F000.wav` (Busso et al. 2008).

Labels are not in the names: each dialog's `Session*/dialog/EmoEvaluation/<dialog>.txt` lists every turn
with the annotators' majority label (`[6.29 - 8.24]  Ses01F_impro01_F000  neu  [2.5, 2.5, 2.5]`). Turns
without a majority (`xxx`) are skipped with that reason; every other code becomes a label (`exc` ->
excited, `fru` -> frustrated, `oth` -> other), so the usual 4-class set is a choice of `data.labels` and
`data.label_map` (the `data/iemocap` preset), and what it leaves out is reported like any other label.

Five sessions, each one male and one female actor. The speaker is the session plus the gender letter
in front of the turn number (`F000` is the woman, whichever actor wore the markers: the `F` of `Ses01F`);
the session is recorded so that folds can leave a whole session out (`data.fold_by: session`).
`data.subset` picks improvised or scripted dialogs.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

from ser.config import CorpusSpec, SyntheticConfig
from ser.data.corpora.base import ScanBuilder, require_root
from ser.data.corpora.named import Named, add_named
from ser.data.types import CorpusScan

NAME = "iemocap"
EXPECTED = "Session1/sentences/wav/Ses01F_impro01/Ses01F_impro01_F000.wav (+ dialog/EmoEvaluation/*.txt)"
TURN = re.compile(r"^(Ses(\d{2})[FM]_(impro|script)[0-9A-Za-z_]*?)_([FM])(\d{3})$")
SESSION_DIR = re.compile(r"^Session(\d+)$")
LABEL_LINE = re.compile(r"^\[\s*([\d.]+)\s*-\s*([\d.]+)\s*\]\s+(\S+)\s+(\S+)\s+\[")
CODES = {
    "neu": "neutral",
    "hap": "happy",
    "exc": "excited",
    "sad": "sad",
    "ang": "angry",
    "fru": "frustrated",
    "sur": "surprised",
    "fea": "fearful",
    "dis": "disgust",
    "oth": "other",
}
NO_AGREEMENT = "xxx"
SUBSETS = {"improvised": "impro", "scripted": "script"}
LABEL_DIR = ("dialog", "EmoEvaluation")


def read_labels(session_dir: Path) -> dict[str, str]:
    """Turn name -> label code from every `<dialog>.txt` in the session's EmoEvaluation folder."""
    folder = session_dir.joinpath(*LABEL_DIR)
    labels: dict[str, str] = {}
    if not folder.is_dir():
        return labels
    for path in sorted(folder.glob("*.txt")):
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        for line in text.splitlines():
            match = LABEL_LINE.match(line.strip())
            if match:
                labels[match.group(3)] = match.group(4).lower()
    return labels


def _session_dir(root: Path, path: Path) -> tuple[Optional[Path], tuple[str, ...]]:
    """(the SessionN folder holding `path`, the parts of `path` below it)."""
    parts = path.relative_to(root).parts
    for i, part in enumerate(parts[:-1]):
        if SESSION_DIR.match(part):
            return root.joinpath(*parts[: i + 1]), parts[i + 1 :]
    if SESSION_DIR.match(root.name):  # the root is itself one session
        return root, parts
    return None, parts


def check_subset(subset: Optional[str]) -> Optional[str]:
    from ser.data.types import CorpusError

    if subset is None:
        return None
    if subset not in SUBSETS:
        raise CorpusError(f"{NAME}: subset {subset!r} is not one of {', '.join(SUBSETS)} (data.subset)")
    return SUBSETS[subset]


def scan(
    spec: CorpusSpec,
    *,
    check_audio: bool = True,
    progress: bool = False,
    synthetic: Optional[SyntheticConfig] = None,
) -> CorpusScan:
    """Sentence WAVs under SessionN/sentences/wav/, labelled from SessionN/dialog/EmoEvaluation/."""
    root = require_root(NAME, spec.root, EXPECTED)
    keep = check_subset(spec.subset)
    builder = ScanBuilder(NAME, root, EXPECTED)
    labels_by_session: dict[Path, dict[str, str]] = {}

    def parse(path: Path) -> Named | str:
        session_dir, below = _session_dir(root, path)
        if session_dir is None:
            return "not inside a SessionN folder"
        if below[:2] == ("dialog", "wav"):
            return "whole-dialog recording (dialog/wav), not a sentence"
        if below[:2] != ("sentences", "wav") or len(below) != 4:
            return f"not in {session_dir.name}/sentences/wav/<dialog>/"
        match = TURN.match(path.stem)
        if match is None:
            return "name does not match the IEMOCAP turn pattern Ses01F_impro01_F000"
        dialog, number, kind, gender, _turn = match.groups()
        session_number = int(SESSION_DIR.match(session_dir.name).group(1))  # type: ignore[union-attr]
        if int(number) != session_number:
            return f"name says session {number} but the file is in {session_dir.name}"
        if keep is not None and kind != keep:
            what = "scripted" if kind == "script" else "improvised"
            return f"{what} dialog, not in the subset {spec.subset}"
        if session_dir not in labels_by_session:
            labels_by_session[session_dir] = read_labels(session_dir)
        label_file = Path(session_dir.name, *LABEL_DIR, f"{dialog}.txt")
        code = labels_by_session[session_dir].get(path.stem)
        if code is None:
            exists = session_dir.joinpath(*LABEL_DIR, f"{dialog}.txt").is_file()
            return f"no label for {path.stem} in {label_file}{'' if exists else ' (missing)'}"
        if code == NO_AGREEMENT:
            return f"no majority label (xxx) in {label_file}"
        label = CODES.get(code)
        if label is None:
            return f"unknown emotion code {code} in {label_file}"
        session = f"Ses{number}"
        return Named(
            key=path.stem, speaker=f"{session}{gender}", label=label, gender=gender.lower(), session=session
        )

    return add_named(builder, parse).finish(check_audio=check_audio, progress=progress)
