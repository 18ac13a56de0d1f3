"""Telling dotted `key=value` overrides from positional arguments, the same way in every command.

An argument is an override only when what precedes its first `=` is a dotted config key
(`model.depth=4`, `data.root=/a=b`). A path that contains `=` (every sweep trial folder does:
`.../optim_lr=0.0100_.../fold_0/best.ckpt`) is a path.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

OVERRIDE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*=")


def is_override(item: str) -> bool:
    return bool(OVERRIDE.match(item)) and not _exists(item)


def _exists(item: str) -> bool:
    """Whether `item` names an existing file; a name the OS cannot even look up (longer than 255 bytes,
    an embedded NUL) names none, instead of crashing every command with OSError."""
    try:
        return Path(item).exists()
    except (OSError, ValueError):
        return False


def split_overrides(items: Sequence[str]) -> tuple[list[str], list[str]]:
    """(overrides, everything else), each in the order given."""
    overrides = [i for i in items if is_override(i)]
    rest = [i for i in items if not is_override(i)]
    return overrides, rest


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0 (`--window inf` used to overflow converting to samples)."""
    import argparse
    import math

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text} must be a finite number")
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text} must be > 0")
    return value


def int_in(low: int, high: int, what: str):
    """argparse type: an integer in [low, high] (a port, a sample rate)."""
    import argparse

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{what} {value} must be between {low} and {high}")
        return value

    return parse
