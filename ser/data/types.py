"""Records that flow from corpus adapters to folds and features."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from ser.config.errors import UserError


@dataclass(frozen=True)
class Utterance:
    """One labelled recording. `speaker` is unique across merged corpora (prefixed by corpus)."""

    id: str
    path: str
    speaker: str
    label: str
    corpus: str
    gender: Optional[str] = None  # "m" | "f" | None where the corpus does not say
    session: Optional[str] = None  # recording session (IEMOCAP), prefixed like speaker; folds may group by it
    split: Optional[str] = None  # train | val | test where the corpus fixes one (a manifest's split column)


@dataclass(frozen=True)
class Skipped:
    """A file that was not used, and why. Nothing is dropped without one of these."""

    path: str
    reason: str


@dataclass
class CorpusScan:
    """What an adapter found under a root: usable utterances and every skipped file."""

    utterances: list[Utterance] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


class CorpusError(UserError, RuntimeError):
    """The corpus cannot be used at all (missing root, no usable files)."""
