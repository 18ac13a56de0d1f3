"""The one scan loop of the corpora whose file names (and folders) say who speaks and which emotion:
RAVDESS, CREMA-D, TESS, EMO-DB, SAVEE, ESD, IEMOCAP.

Each adapter writes only its `parse(path)`: a `Named` record, or the reason to skip the file. The loop
(every audio file below the root, each skip recorded with its reason, ids prefixed and deduplicated by
`ScanBuilder`) lives here once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

from ser.data.corpora.base import ScanBuilder, find_audio_files, require_root
from ser.data.types import CorpusScan


@dataclass(frozen=True)
class Named:
    """What a file's name says: its utterance key (unique in the corpus), speaker, label, gender, session."""

    key: str
    speaker: str
    label: str
    gender: Optional[str] = None
    session: Optional[str] = None


Parse = Callable[[Path], Union[Named, str]]  # a parsed file, or why it is skipped


def add_named(builder: ScanBuilder, parse: Parse) -> ScanBuilder:
    """Every audio file below the builder's root, parsed: added, or skipped with the parser's reason."""
    for path in find_audio_files(builder.root, builder.skip):
        parsed = parse(path)
        if isinstance(parsed, str):
            builder.skip(path, parsed)
        else:
            builder.add(
                path,
                key=parsed.key,
                speaker=parsed.speaker,
                label=parsed.label,
                gender=parsed.gender,
                session=parsed.session,
            )
    return builder


def scan_named(
    corpus: str,
    root: Optional[str],
    expected: str,
    parse: Callable[[Path, Path], Union[Named, str]],
    *,
    check_audio: bool = True,
    progress: bool = False,
) -> CorpusScan:
    """A whole filename-coded corpus: its root checked, every file parsed (`parse(path, root)`), the
    result validated and reported by `ScanBuilder.finish`."""
    found = require_root(corpus, root, expected)
    builder = add_named(ScanBuilder(corpus, found, expected), lambda path: parse(path, found))
    return builder.finish(check_audio=check_audio, progress=progress)
