"""The one base class of "fix your input" errors, and the full-disk check. It lives beside the config
(which imports no torch) and imports nothing at module level (the standard library only, inside the
functions), so the CLI can map any user error to one line and exit 2 without loading torch, Lightning or
Ray just to build an `except` tuple."""

from __future__ import annotations


class UserError(Exception):
    """An error caused by the input (config, corpus, checkpoint, audio, cache), shown as one line."""


class NoSpaceError(UserError, OSError):
    """A write failed because the disk (or quota) is full; the message names the folder being written."""


def disk_full(exc: BaseException | None, folder: object = None) -> bool:
    """Whether `exc` means a full disk: ENOSPC/EDQUOT in an OSError anywhere in its chain, or (for
    libraries that hide the errno, libsndfile's "System error", torch's "file write failed") a `folder`
    with less than 1 MB free."""
    import errno

    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
            return True
        exc = exc.__cause__ or exc.__context__
    if folder is None:
        return False
    import shutil
    from pathlib import Path

    path = Path(str(folder))
    while not path.exists() and path != path.parent:
        path = path.parent
    try:
        return shutil.disk_usage(path).free < 1 << 20
    except OSError:
        return False


def no_space(folder: object, what: str = "") -> NoSpaceError:
    """The one-line error for a full disk under `folder` (`what`: the cache, the run folder, ...)."""
    label = f" ({what})" if what else ""
    return NoSpaceError(
        f"no space left on device writing {folder}{label}; free some space or point it elsewhere"
    )


class _DiskFullGuard:
    """`with writing_to(folder, what):` turns a full-disk failure inside into `no_space(folder, what)`."""

    def __init__(self, folder: object, what: str) -> None:
        self.folder, self.what = folder, what

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind, exc, tb) -> bool:
        if exc is not None and not isinstance(exc, (UserError, KeyboardInterrupt)):
            if isinstance(exc, Exception) and disk_full(exc, self.folder):
                raise no_space(self.folder, self.what) from exc
        return False


def writing_to(folder: object, what: str = "") -> _DiskFullGuard:
    """Context manager for writes under `folder`: a full disk becomes one line naming it (and `what`)."""
    return _DiskFullGuard(folder, what)
