"""The `synthetic` corpus on disk: written once per config (folder layout) into the cache and reused."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import fields
from pathlib import Path
from typing import Any

from ser.config import SyntheticConfig
from ser.config.errors import writing_to
from ser.data.paths import cache_root
from ser.data.synthetic.naming import write_corpus
from ser.data.synthetic.voice import GENERATOR_VERSION


def config_dict(cfg: SyntheticConfig) -> dict[str, Any]:
    """The config as plain values (works for the dataclass and for an omegaconf node)."""
    out: dict[str, Any] = {}
    for f in fields(SyntheticConfig):
        value = getattr(cfg, f.name, f.default)
        out[f.name] = [str(x) for x in value] if f.name == "labels" else value
    return out


def config_hash(cfg: SyntheticConfig) -> str:
    payload = json.dumps({"version": GENERATOR_VERSION, **config_dict(cfg)}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:12]


def materialize(cfg: SyntheticConfig, cache_dir: str | None = None) -> Path:
    """Write the "folder" style once per config and return its root; reuse a complete earlier copy.

    Writes into a temporary sibling directory and renames it into place after a `COMPLETE` marker, so
    concurrent processes (sweep trials) never read a half-written corpus.
    """
    base = cache_root(cache_dir) / "synthetic"
    root = base / config_hash(cfg)
    if (root / "COMPLETE").is_file():
        return root
    base.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}-", dir=base))
    try:
        with writing_to(base.parent, "the synthetic corpus: SER_CACHE or data.features.cache_dir"):
            write_corpus(tmp, "folder", cfg)
            (tmp / "COMPLETE").write_text(json.dumps(config_dict(cfg), indent=1) + "\n")
        _publish(tmp, root)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return root


def _publish(tmp: Path, root: Path) -> None:
    """Rename tmp -> root; if another process won the race with a complete copy, keep theirs."""
    for attempt in range(2):
        try:
            os.rename(tmp, root)
            return
        except OSError:
            if (root / "COMPLETE").is_file():
                return
            if attempt:
                raise
            shutil.rmtree(root, ignore_errors=True)  # an incomplete leftover: replace it
