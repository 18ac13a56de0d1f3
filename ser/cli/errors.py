"""The one mapping from exceptions to what the user sees: a single `ser: error: ...` line and exit code 2
for anything the input caused (bad config, corpus, checkpoint, audio, cache); 130 for Ctrl-C."""

from __future__ import annotations

import sys
from collections.abc import Callable

USAGE_ERROR = 2
INTERRUPTED = 130


class UserError(Exception):
    """An error caused by the input, reported without a traceback."""


def user_errors() -> tuple[type[BaseException], ...]:
    """Every exception type that means "fix your input", imported lazily (torch only when installed)."""
    from ser.config import ConfigError
    from ser.data.paths import CacheError
    from ser.data.types import CorpusError

    errors: list[type[BaseException]] = [UserError, ConfigError, CorpusError, CacheError, FileNotFoundError]
    from ser.data.audio import AudioError

    errors.append(AudioError)
    try:
        from ser.inference.checkpoint import CheckpointError
        from ser.inference.sources import LiveInputError
        from ser.models.classifier import TrainingDiverged
    except ImportError:  # pragma: no cover - torch missing: those errors cannot happen either
        pass
    else:
        errors += [CheckpointError, TrainingDiverged, LiveInputError]
    return tuple(errors)


def run_reporting_errors(func: Callable[[], int | None], prog: str = "ser") -> int:
    """Run a command: its exit code, or 2 with one line for a user error, 130 on Ctrl-C."""
    try:
        return int(func() or 0)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return INTERRUPTED
    except Exception as exc:
        if isinstance(exc, user_errors()):
            print(f"{prog}: error: {exc}", file=sys.stderr)
            return USAGE_ERROR
        raise
