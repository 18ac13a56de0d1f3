"""Any corpus laid out folder-per-emotion: `ROOT/<label>/*.wav`.

Speakers come from `speaker_regex`, searched in each file stem, with a named group `speaker` and an
optional `gender` (m/f/male/female). Without it every file is its own speaker, which the scan warns
about: folds can then not keep a speaker's other recordings out of the test split.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from ser.config import CorpusSpec, SyntheticConfig
from ser.data.corpora.base import ScanBuilder, find_audio_files, require_root
from ser.data.labels import canonical_label
from ser.data.types import CorpusError, CorpusScan

NAME = "folder"
EXPECTED = "ROOT/<label>/*.wav (one folder per emotion)"
_GENDERS = {"m": "m", "male": "m", "f": "f", "female": "f"}


MATCH_SECONDS = 0.5  # per file name; a sane pattern takes microseconds on a stem


def compile_speaker_regex(corpus: str, pattern: Optional[str]) -> Optional[Any]:
    """The compiled regex, or CorpusError naming the config key when it cannot identify speakers.

    Compiled with the `regex` package (the same syntax as `re`) because its matches take a `timeout`: a
    user pattern with nested quantifiers, `^(?P<speaker>(a+)+)$`, used to backtrack for hours on one name."""
    if not pattern:
        return None
    import regex

    try:
        compiled = regex.compile(pattern)
    except (regex.error, ValueError) as exc:
        raise CorpusError(f"{corpus}: speaker_regex {pattern!r} is not a valid regex: {exc}") from None
    if "speaker" not in compiled.groupindex:
        raise CorpusError(f"{corpus}: speaker_regex {pattern!r} has no named group (?P<speaker>...)")
    return compiled


def search_speaker(corpus: str, compiled: Any, path: Path) -> Any:
    """`compiled.search(path.stem)` within MATCH_SECONDS, or CorpusError naming the file and the pattern."""
    try:
        return compiled.search(path.stem, timeout=MATCH_SECONDS)
    except TimeoutError:
        raise CorpusError(
            f"{corpus}: speaker_regex {compiled.pattern!r} took over {MATCH_SECONDS} s on the file name "
            f"{path.name!r} ({path}); it backtracks catastrophically (nested repeats like (a+)+ or (a|aa)+): "
            "write it without a repeat inside a repeat"
        ) from None


def _folder_label(folder: str, label_map: dict[str, str]) -> Optional[str]:
    label = canonical_label(folder)
    if label is None and folder.lower() in {k.lower() for k in label_map}:
        return folder.lower()  # a corpus-specific name the spec's label_map harmonises later
    return label


def scan_folder_layout(
    corpus: str,
    root: Path,
    speaker_regex: Optional[str],
    label_map: dict[str, str],
    check_audio: bool,
    progress: bool,
) -> CorpusScan:
    """Scan `root/<label>/...`; shared by the folder and synthetic adapters."""
    regex = compile_speaker_regex(corpus, speaker_regex)
    builder = ScanBuilder(corpus, root, EXPECTED)
    for path in find_audio_files(root, builder.skip):
        parts = path.relative_to(root).parts
        if len(parts) < 2:
            builder.skip(path, "not inside an emotion folder (expected ROOT/<label>/file)")
            continue
        label = _folder_label(parts[0], label_map)
        if label is None:
            builder.skip(path, f"unknown emotion folder {parts[0]}")
            continue
        key = "/".join((label, *parts[1:-1], path.stem))
        if regex is None:
            builder.add(path, key=key, speaker=key, label=label, gender=None)
            continue
        match = search_speaker(corpus, regex, path)
        if match is None or not match.group("speaker"):
            builder.skip(path, f"file name does not match speaker_regex {regex.pattern!r}")
            continue
        gender = match.groupdict().get("gender")
        gender = _GENDERS.get(gender.lower()) if gender else None
        builder.add(path, key=key, speaker=match.group("speaker"), label=label, gender=gender)
    if regex is None:
        builder.warnings.append(
            f"{corpus}: no speaker_regex given for {root}, so every file is its own speaker and folds "
            "cannot be speaker-independent; pass a regex with a (?P<speaker>...) group, e.g. "
            "--speaker-regex '^(?P<speaker>[A-Za-z0-9]+)_' (data.speaker_regex=...) for spk01_angry_003.wav"
        )
    return builder.finish(check_audio=check_audio, progress=progress)


def scan(
    spec: CorpusSpec,
    *,
    check_audio: bool = True,
    progress: bool = False,
    synthetic: Optional[SyntheticConfig] = None,
) -> CorpusScan:
    root = require_root(NAME, spec.root, EXPECTED)
    return scan_folder_layout(
        NAME, root, spec.speaker_regex, dict(spec.label_map or {}), check_audio, progress
    )
