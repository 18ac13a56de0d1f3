"""Where `ser` keeps what it computes once (the feature/waveform cache and the synthetic corpus) and where
runs write (trainer.output_dir): both checked to be usable folders before any work starts."""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path
from typing import Optional

from ser.config.errors import UserError


class CacheError(UserError, OSError):
    """The cache folder cannot be used (a file, not writable); the message names it and the fix."""


def write_atomic(path: str | Path, data: str | bytes) -> Path:
    """Write a result file whole or not at all: into a temporary file beside it, flushed to disk, then
    renamed over `path` (a rename within one folder is atomic). A reader (the sweep driver, `--resume`,
    `ser report`) never sees half a file; a full disk leaves the previous version intact and raises an
    OSError (ENOSPC) that names `path`, not the temporary file."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    payload = data.encode() if isinstance(data, str) else data
    try:
        with open(tmp, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        if exc.errno == errno.ENOSPC:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path)) from exc
        raise
    return path


def cache_root(cfg_dir: Optional[str] = None) -> Path:
    """The configured dir, else $SER_CACHE, else ~/.cache/ser; created, and checked to be a writable
    folder (CacheError naming it otherwise)."""
    if cfg_dir:
        root, source = Path(cfg_dir).expanduser(), "data.features.cache_dir"
    elif os.environ.get("SER_CACHE"):
        root, source = Path(os.environ["SER_CACHE"]).expanduser(), "SER_CACHE"
    else:
        root, source = Path.home() / ".cache" / "ser", "the default ~/.cache/ser"
    if root.exists() and not root.is_dir():
        raise CacheError(
            f"cache location {root} ({source}) is a file, not a folder; set SER_CACHE to a folder"
        )
    try:
        root.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=root, prefix=".write-test-"):
            pass
    except OSError as exc:
        raise CacheError(
            f"cache folder {root} ({source}) is not writable ({exc.strerror or exc}); set SER_CACHE"
        ) from None
    return root


def check_output_dir(output_dir: str | Path) -> Path:
    """trainer.output_dir is (or can become) a writable folder. Checked by `ser fit` before torch is even
    imported, so a file in its place fails in a second with one line, not with a traceback after the
    features are computed."""
    from ser.config.schema import ConfigError

    out = Path(output_dir).expanduser()
    blocker = next((p for p in (out, *out.parents) if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        what = "is a file" if blocker == out else f"is inside {blocker}, which is a file"
        raise ConfigError(f"invalid config key 'trainer.output_dir': {out} {what}; give a folder")
    existing = next(p for p in (out, *out.parents) if p.exists())
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(f"invalid config key 'trainer.output_dir': {existing} is not writable")
    return out
