"""Any corpus without code: a CSV or TSV manifest with one row per recording.

Columns (header names, any case): `path`, `label`, `speaker`, and optionally `gender` (m/f/male/female),
`split` (train/val/test: a fixed partition, used with `data.partition: manifest`), `session` (a recording
group for `data.fold_by: session`) and `id` (the utterance id; default: the path without its extension).
`data.root` is the manifest file; relative paths are relative to the folder it is in. A row that cannot
be used is reported like a bad file (`manifest.csv:12` and why); a missing column is an error.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Optional

from ser.config import CorpusSpec, SyntheticConfig
from ser.data.corpora.base import ScanBuilder
from ser.data.labels import canonical_label
from ser.data.types import CorpusError, CorpusScan

NAME = "manifest"
EXPECTED = "a CSV/TSV file with columns path,label,speaker[,gender,split,session,id]"
REQUIRED = ("path", "label", "speaker")
OPTIONAL = ("gender", "split", "session", "id")
GENDERS = {"m": "m", "male": "m", "f": "f", "female": "f"}
SPLITS = {"train": "train", "val": "val", "valid": "val", "validation": "val", "dev": "val", "test": "test"}


def manifest_path(root: Optional[str]) -> Path:
    """The manifest file named by `data.root`, or CorpusError saying what was expected."""
    if not root:
        raise CorpusError(f"{NAME}: no manifest given (set data.root to {EXPECTED})")
    path = Path(os.path.abspath(os.path.expanduser(str(root))))
    if not path.exists():
        raise CorpusError(f"{NAME}: {path} does not exist; expected {EXPECTED}")
    if not path.is_file():
        raise CorpusError(f"{NAME}: {path} is a folder; data.root must be the manifest file itself")
    return path


def read_rows(path: Path) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """(normalised header, [(line number, row)]) of a CSV (comma) or TSV (tab, or a .tsv name)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise CorpusError(f"{NAME}: cannot read {path}: {exc}") from None
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        raise CorpusError(f"{NAME}: {path} is empty; expected a header line with {', '.join(REQUIRED)}")
    delimiter = "\t" if path.suffix.lower() == ".tsv" or "\t" in lines[0] else ","
    reader = csv.reader(lines, delimiter=delimiter)
    try:
        header = [h.strip().lower() for h in next(reader)]
        missing = [c for c in REQUIRED if c not in header]
        if missing:
            raise CorpusError(
                f"{NAME}: {path} lacks column(s) {', '.join(missing)} (header: {', '.join(header)}); "
                f"expected {EXPECTED}"
            )
        rows = []
        for number, cells in enumerate(reader, start=2):
            if not any(c.strip() for c in cells):
                continue  # blank line
            rows.append(
                (number, {h: (cells[i].strip() if i < len(cells) else "") for i, h in enumerate(header)})
            )
    except csv.Error as exc:
        raise CorpusError(f"{NAME}: {path} line {reader.line_num}: {exc}") from None
    return header, rows


def _problem(row: dict[str, str]) -> Optional[str]:
    for column in REQUIRED:
        if not row.get(column):
            return f"empty {column}"
    if row.get("gender") and row["gender"].lower() not in GENDERS:
        return f"gender {row['gender']!r} is not m, f, male or female"
    if row.get("split") and row["split"].lower() not in SPLITS:
        return f"split {row['split']!r} is not train, val or test"
    return None


def scan(
    spec: CorpusSpec,
    *,
    check_audio: bool = True,
    progress: bool = False,
    synthetic: Optional[SyntheticConfig] = None,
) -> CorpusScan:
    """One utterance per usable manifest row; every other row in `skipped` with its line and reason."""
    manifest = manifest_path(spec.root)
    folder = manifest.parent
    builder = ScanBuilder(NAME, folder, EXPECTED)
    _header, rows = read_rows(manifest)
    for number, row in rows:
        where = Path(f"{manifest}:{number}")
        problem = _problem(row)
        if problem:
            builder.skip(where, f"row {number}: {problem}")
            continue
        path = Path(os.path.expanduser(row["path"]))
        path = path if path.is_absolute() else folder / path
        path = Path(os.path.abspath(path))
        if not path.is_file():
            builder.skip(path, f"row {number}: file does not exist")
            continue
        key = row.get("id") or _default_key(path, folder)
        label = canonical_label(row["label"]) or row["label"].strip().lower()
        gender = GENDERS.get(row.get("gender", "").lower())
        split = SPLITS.get(row.get("split", "").lower())
        builder.add(
            path,
            key=key,
            speaker=row["speaker"],
            label=label,
            gender=gender,
            session=row.get("session") or None,
            split=split,
        )
    return builder.finish(check_audio=check_audio, progress=progress)


def _default_key(path: Path, folder: Path) -> str:
    try:
        return path.relative_to(folder).with_suffix("").as_posix()
    except ValueError:
        return path.with_suffix("").as_posix()
