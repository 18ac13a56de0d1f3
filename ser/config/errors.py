"""The one base class of "fix your input" errors. It lives beside the config (which imports no torch) and
imports nothing itself, so the CLI can map any user error to one line and exit 2 without loading torch,
Lightning or Ray just to build an `except` tuple."""

from __future__ import annotations


class UserError(Exception):
    """An error caused by the input (config, corpus, checkpoint, audio, cache), shown as one line."""
