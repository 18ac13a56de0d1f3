"""The one mapping from exceptions to what the user sees: a single `ser: error: ...` line and exit code 2
for anything the input caused (bad config, corpus, checkpoint, audio, cache); 130 for Ctrl-C."""

from __future__ import annotations

import sys
from collections.abc import Callable

from ser.config.errors import UserError, disk_full

__all__ = ["UserError", "run_reporting_errors", "user_errors"]

USAGE_ERROR = 2
INTERRUPTED = 130


def user_errors() -> tuple[type[BaseException], ...]:
    """Every exception type that means "fix your input". They all derive from `UserError`, which lives
    beside the config and imports nothing, so mapping an error costs no torch/Lightning/Ray import."""
    return (UserError, FileNotFoundError)


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
        if disk_full(exc):  # a write the code does not wrap (a result file, a plot) on a full disk
            print(f"{prog}: error: no space left on device{_written(exc)}", file=sys.stderr)
            return USAGE_ERROR
        raise


def _written(exc: BaseException | None) -> str:
    """' writing PATH' for the first OSError in the chain that names its file."""
    while exc is not None:
        if isinstance(exc, OSError) and exc.filename:
            return f" writing {exc.filename}"
        exc = exc.__cause__ or exc.__context__
    return ""
