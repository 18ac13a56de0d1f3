"""ser: speech emotion recognition sweeps on PyTorch Lightning, Ray Tune and W&B.

The Python API (ser/api.py) is reached from here without importing torch until it is used:
`ser.load_config`, `ser.fit`, `ser.datamodule`, `ser.build_model`, `ser.sweep`.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["build_model", "datamodule", "fit", "load_config", "sweep"]

_API = frozenset(__all__) - {"sweep"}  # `ser.sweep` is also the subpackage: it is callable (ser/sweep)


def __getattr__(name: str) -> Any:
    """Lazy attributes (PEP 562): `import ser` stays light; the API module loads on first use."""
    if name in _API:
        from ser import api

        return getattr(api, name)
    if name == "sweep":
        import importlib

        return importlib.import_module("ser.sweep")
    raise AttributeError(f"module 'ser' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
