"""openSMILE functionals (audEERING's `opensmile` package): eGeMAPS, GeMAPS and ComParE per clip.

eGeMAPS (88 values: pitch, jitter, shimmer, loudness, formants, spectral slopes, MFCCs, voiced/unvoiced
segment statistics) is the feature set every SER paper reports as its baseline, and nkululeko's default.
Computed per item on the same fixed-length, normalised waveform every other feature sees (the clip that
`ser predict` scores is cropped/padded the same way), so training and prediction agree. The package ships
its own SMILExtract binary: nothing is downloaded.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ser.config import ConfigError

# data.features.kind -> (opensmile.FeatureSet member, number of functionals)
SETS: dict[str, tuple[str, int]] = {
    "egemaps": ("eGeMAPSv02", 88),
    "gemaps": ("GeMAPSv01b", 62),
    "compare": ("ComParE_2016", 6373),
}


def dim(kind: str) -> int:
    return SETS[kind][1]


def _package() -> Any:
    try:
        import opensmile
    except ImportError:
        raise ConfigError(
            "invalid config key 'data.features.kind': openSMILE features need the opensmile package "
            "(pip install opensmile)"
        ) from None
    return opensmile


def version() -> str:
    """The package version, part of the cache key: another openSMILE release may compute other numbers."""
    return str(_package().__version__)


def extractor(kind: str) -> Any:
    """An `opensmile.Smile` computing the functionals of `kind` (egemaps | gemaps | compare)."""
    if kind not in SETS:
        raise ValueError(f"openSMILE kind must be one of {sorted(SETS)}, got {kind!r}")
    smile = _package()
    return smile.Smile(
        feature_set=getattr(smile.FeatureSet, SETS[kind][0]), feature_level=smile.FeatureLevel.Functionals
    )


def smile_vector(smile: Any, wave: np.ndarray, sample_rate: int) -> np.ndarray:
    """One clip's functionals as float32; undefined values (a silent clip has no pitch) become 0."""
    frame = smile.process_signal(np.asarray(wave, dtype=np.float32), int(sample_rate))
    vec = np.asarray(frame.to_numpy(), dtype=np.float32).reshape(-1)
    return np.nan_to_num(vec, nan=0.0, posinf=0.0, neginf=0.0)


def names(kind: str) -> list[str]:
    """The feature names of `kind`, in the order of the vector."""
    return list(extractor(kind).feature_names)
