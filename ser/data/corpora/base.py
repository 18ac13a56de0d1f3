"""What every corpus adapter shares: finding audio files, recording skips, checking audio, failing clearly.

An adapter only parses names; `ScanBuilder` owns the invariants: ids unique, speakers prefixed by the
corpus, every audio-looking file either used or listed in `skipped` with a reason.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Callable, Optional, Protocol

from ser.config import CorpusSpec, SyntheticConfig
from ser.data.audio import AudioError, validate_audio
from ser.data.types import CorpusError, CorpusScan, Skipped, Utterance

AUDIO_EXTENSIONS = (".wav", ".flac", ".aif", ".aiff")
PROGRESS_MIN_FILES = 200  # below this a progress bar is noise


class Adapter(Protocol):
    def __call__(
        self,
        spec: CorpusSpec,
        *,
        check_audio: bool = True,
        progress: bool = False,
        synthetic: Optional[SyntheticConfig] = None,
    ) -> CorpusScan: ...


def require_root(corpus: str, root: Optional[str], expected: str) -> Path:
    """The absolute root folder, or CorpusError saying what was expected there."""
    if not root:
        raise CorpusError(f"{corpus}: no root folder given (set data.root); expected {expected}")
    path = Path(os.path.abspath(os.path.expanduser(str(root))))
    try:
        exists = path.exists()
    except (OSError, ValueError) as exc:  # a name too long to look up, an embedded NUL
        why = getattr(exc, "strerror", None) or str(exc)
        raise CorpusError(f"{corpus}: root {str(path)[:80]}... cannot be read ({why})") from None
    if not exists:
        raise CorpusError(f"{corpus}: root {path} does not exist; expected {expected}")
    if not path.is_dir():
        raise CorpusError(f"{corpus}: root {path} is not a directory; expected {expected}")
    return path


def is_utf8(name: str) -> bool:
    """Whether a name from the file system decodes as UTF-8 (Python keeps other bytes as surrogates,
    which libsndfile cannot open and the terminal cannot print)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def printable(name: str) -> str:
    """The name with bytes that are not UTF-8 shown as \\xNN, safe to print and to store in JSON."""
    return os.fsencode(name).decode("utf-8", "backslashreplace")


def find_audio_files(root: Path, skip: Optional[Callable[[Path, str], None]] = None) -> list[Path]:
    """Every file below root whose extension looks like audio, sorted; never loops, never relabels.

    A symlinked folder directly under the root is followed (corpora are often assembled from links), but a
    directory link further down is not: `happy/tosad -> ../sad` would give sad clips the label happy. A
    file reachable twice (a link to another file) is used once, at its own path rather than the link's.
    What is left out is reported through `skip`."""
    candidates: dict[str, list[Path]] = {}
    seen_dirs: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        here = Path(dirpath)
        real = os.path.realpath(dirpath)
        if real in seen_dirs:
            dirnames[:] = []
            continue
        seen_dirs.add(real)
        dirnames.sort()
        if len(here.relative_to(root).parts) >= 1:
            for name in [d for d in dirnames if (here / d).is_symlink()]:
                dirnames.remove(name)
                if skip is not None:
                    target = os.readlink(here / name)
                    skip(
                        here / name,
                        f"directory link to {target} inside a folder: not followed (it would relabel)",
                    )
        for name in filenames:
            if name.lower().endswith(AUDIO_EXTENSIONS):
                path = here / name
                if not is_utf8(str(path)):
                    if skip is not None:
                        skip(Path(printable(str(path))), "file name is not valid UTF-8: rename it")
                    continue
                candidates.setdefault(os.path.realpath(path), []).append(path)
    found = []
    for paths in candidates.values():
        keep = min(paths, key=lambda p: (p.is_symlink(), str(p)))  # the file itself before a link to it
        found.append(keep)
        for other in paths:
            if other != keep and skip is not None:
                skip(other, f"same file as {keep} (a link): not used twice")
    return sorted(found)


class ScanBuilder:
    """Collects utterances and skips for one corpus, then checks audio and validates the result."""

    def __init__(self, corpus: str, root: Path, expected: str) -> None:
        self.corpus = corpus
        self.root = root
        self.expected = expected
        self.utterances: list[Utterance] = []
        self.skipped: list[Skipped] = []
        self.warnings: list[str] = []
        self._first_path: dict[str, str] = {}

    def add(
        self,
        path: Path,
        key: str,
        speaker: str,
        label: str,
        gender: Optional[str],
        *,
        session: Optional[str] = None,
        split: Optional[str] = None,
    ) -> None:
        """Record a parsed file; `key`, `speaker` and `session` get the corpus prefix. A repeated key is
        skipped."""
        uid = f"{self.corpus}:{key}"
        if uid in self._first_path:
            self.skip(path, f"duplicate of {self._first_path[uid]} (same utterance id {uid})")
            return
        self._first_path[uid] = str(path)
        self.utterances.append(
            Utterance(
                id=uid,
                path=str(path),
                speaker=f"{self.corpus}:{speaker}",
                label=label,
                corpus=self.corpus,
                gender=gender,
                session=None if session is None else f"{self.corpus}:{session}",
                split=split,
            )
        )

    def skip(self, path: Path, reason: str) -> None:
        self.skipped.append(Skipped(path=str(path), reason=reason))

    def finish(self, check_audio: bool = True, progress: bool = False) -> CorpusScan:
        """Decode each parsed file once when asked; CorpusError when nothing usable is left."""
        utterances = self.utterances
        if check_audio:
            utterances = []
            items: Iterable[Utterance] = self.utterances
            if progress and len(self.utterances) >= PROGRESS_MIN_FILES:
                from tqdm import tqdm

                items = tqdm(items, desc=f"checking {self.corpus} audio", unit="file", file=sys.stderr)
            for utt in items:
                try:
                    validate_audio(utt.path)
                except AudioError as exc:
                    self.skip(Path(utt.path), exc.reason)
                else:
                    utterances.append(utt)
        skipped = sorted(self.skipped, key=lambda s: s.path)
        if not utterances:
            raise CorpusError(self._nothing_usable(skipped))
        return CorpusScan(utterances=utterances, skipped=skipped, warnings=list(self.warnings))

    def _nothing_usable(self, skipped: list[Skipped]) -> str:
        head = f"{self.corpus}: no usable files matching {self.expected} under {self.root}"
        if not skipped:
            return f"{head} (no audio files {' '.join(AUDIO_EXTENSIONS)} found there)"
        examples = "; ".join(f"{self.relative(s.path)}: {s.reason}" for s in skipped[:5])
        more = f" (and {len(skipped) - 5} more)" if len(skipped) > 5 else ""
        return f"{head}: all {len(skipped)} audio files were skipped, e.g. {examples}{more}"

    def relative(self, path: str) -> str:
        try:
            return str(Path(path).relative_to(self.root))
        except ValueError:
            return path
