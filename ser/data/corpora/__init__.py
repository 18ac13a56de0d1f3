"""Corpus adapters by name: each scans a root folder into a `CorpusScan`, never downloads.

`data.corpus: crema_d` in YAML picks `CORPORA["crema_d"]`; a new corpus is one module with a `scan`
function and one line here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Optional

from omegaconf import DictConfig, OmegaConf

from ser.config import CHOICES, ConfigError, CorpusSpec, SyntheticConfig
from ser.data.corpora import crema_d, emodb, esd, folder, iemocap, manifest, ravdess, savee, synthetic, tess
from ser.data.corpora.base import Adapter
from ser.data.types import CorpusError, CorpusScan

CORPORA: dict[str, Adapter] = {
    "ravdess": ravdess.scan,
    "crema_d": crema_d.scan,
    "tess": tess.scan,
    "emodb": emodb.scan,
    "iemocap": iemocap.scan,
    "savee": savee.scan,
    "esd": esd.scan,
    "manifest": manifest.scan,
    "folder": folder.scan,
    "synthetic": synthetic.scan,
}
if set(CORPORA) != set(CHOICES["data.corpus"]):  # the names are listed once, in the config schema
    raise ImportError(f"corpus adapters {sorted(CORPORA)} do not match CHOICES['data.corpus']")
# Corpora made of parts a run may pick (`data.subset`); every other adapter refuses a subset.
SUBSETS: dict[str, tuple[str, ...]] = {"iemocap": tuple(iemocap.SUBSETS)}


def as_spec(spec: Any) -> CorpusSpec:
    """A plain CorpusSpec from a CorpusSpec, an OmegaConf node or a mapping."""
    if isinstance(spec, DictConfig):
        spec = OmegaConf.to_container(spec, resolve=True)
    if isinstance(spec, Mapping):
        return CorpusSpec(**spec)
    if isinstance(spec, CorpusSpec):
        return spec
    raise TypeError(f"expected a CorpusSpec, got {type(spec).__name__}")


def scan_corpus(
    spec: CorpusSpec,
    check_audio: bool = True,
    progress: bool = False,
    synthetic: Optional[SyntheticConfig] = None,
) -> CorpusScan:
    """Scan one corpus; ConfigError for an unknown adapter name, CorpusError when it is unusable."""
    spec = as_spec(spec)
    adapter = CORPORA.get(spec.name)
    if adapter is None:
        raise ConfigError(
            f"invalid config key 'data.corpus': unknown corpus {spec.name!r}; "
            f"known: {', '.join(sorted(CORPORA))}"
        )
    if spec.subset is not None and spec.subset not in SUBSETS.get(spec.name, ()):
        have = SUBSETS.get(spec.name)
        choices = f"one of {', '.join(have)}" if have else "left unset: it has no subsets"
        raise CorpusError(f"{spec.name}: subset {spec.subset!r} must be {choices} (data.subset)")
    return adapter(spec, check_audio=check_audio, progress=progress, synthetic=synthetic)


__all__ = ["CORPORA", "SUBSETS", "as_spec", "scan_corpus"]
