"""`EncoderSource`: a resolved `model.encoder` (where, what, who). It stands alone so that both resolvers,
source.py (hub ids and transformers folders) and audioset.py (single AudioSet weight files), can build one
without importing each other."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class EncoderSource:
    """A resolved `model.encoder`: where it is, what it is, and who it is."""

    source: str  # model.encoder as the config gives it
    revision: str | None
    folder: Path  # config and weights on this machine
    identity: str  # "repo@commit" (hub) or "sha256:..." of settings and weights (local directory)
    model_type: str  # config.json's model_type, one of SUPPORTED
    config: dict[str, Any] = field(repr=False)  # config.json
    preprocessor: dict[str, Any] = field(repr=False)  # preprocessor_config.json (the feature extractor)

    @property
    def sampling_rate(self) -> int:
        return int(self.preprocessor.get("sampling_rate", 16000))

    def record(self) -> dict[str, Any]:
        """Plain types for a checkpoint: enough to rebuild the architecture and to check the weights."""
        return {
            "source": self.source,
            "revision": self.revision,
            "identity": self.identity,
            "model_type": self.model_type,
            "config": self.config,
            "preprocessor": self.preprocessor,
        }
