"""The procedurally generated corpus, read back through the folder layout like any user corpus.

Going through files (rather than arrays in memory) means the default run and the tests exercise the
same loading, checking and caching path that a real corpus does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from ser.config import CorpusSpec, SyntheticConfig
from ser.data.corpora.base import require_root
from ser.data.corpora.folder import scan_folder_layout
from ser.data.types import CorpusScan

NAME = "synthetic"
EXPECTED = "ROOT/<label>/<speaker>-<gender>-<index>.wav"


def synthetic_root(spec: CorpusSpec, synthetic: Optional[SyntheticConfig] = None) -> Path:
    """spec.root when given, else the corpus materialised (and cached) from the synthetic config."""
    if spec.root:
        return require_root(NAME, spec.root, EXPECTED)
    from ser.data.synthetic import materialize

    return Path(materialize(synthetic if synthetic is not None else SyntheticConfig()))


def scan(
    spec: CorpusSpec,
    *,
    check_audio: bool = True,
    progress: bool = False,
    synthetic: Optional[SyntheticConfig] = None,
) -> CorpusScan:
    from ser.data.synthetic import SPEAKER_REGEX

    root = synthetic_root(spec, synthetic)
    regex = spec.speaker_regex or SPEAKER_REGEX
    return scan_folder_layout(NAME, root, regex, dict(spec.label_map or {}), check_audio, progress)
