"""Sweeps: `python -m ser.sweep SWEEP.yaml [key=value ...]` on Ray Tune (ASHA), W&B, resume, leaderboard.

`ser.sweep` is this package and the API call `ser.sweep(path_or_spec, **overrides)` at once: Python binds
a subpackage as an attribute of its parent when it is imported, so a function of that name in `ser` would
be replaced by the package whenever anything imported `ser.sweep.*`. The package is made callable
instead, and calling it runs `ser.sweep.frame.sweep_frame` (= `ser.api.sweep`).
"""

from __future__ import annotations

import sys
import types
from typing import Any


class _CallableModule(types.ModuleType):
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from ser.sweep.frame import sweep_frame

        return sweep_frame(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
