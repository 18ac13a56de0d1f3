"""Shared fixtures: tiny audio files of known content written into tmp_path."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional

import numpy as np
import pytest
import soundfile as sf


def write_wav(
    path: str | Path,
    seconds: float = 0.3,
    sample_rate: int = 16000,
    channels: int = 1,
    kind: str = "noise",
    amplitude: float = 0.3,
    subtype: Optional[str] = None,
    format: Optional[str] = None,
    seed: int = 0,
) -> Path:
    """Write `kind` ("noise" | "tone" | "silence") audio; `format`/`subtype` as soundfile takes them."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n = int(round(seconds * sample_rate))
    if kind == "noise":
        wave = np.random.default_rng(seed).uniform(-1.0, 1.0, (n, channels))
    elif kind == "tone":
        t = np.arange(n) / sample_rate
        wave = np.stack([np.sin(2 * np.pi * 440.0 * (c + 1) * t) for c in range(channels)], axis=1)
    elif kind == "silence":
        wave = np.zeros((n, channels))
    else:
        raise ValueError(f"unknown kind {kind!r}")
    data = (amplitude * wave).astype(np.float32)
    sf.write(str(path), data if channels > 1 else data[:, 0], sample_rate, subtype=subtype, format=format)
    return path


@pytest.fixture
def wav_writer() -> Callable[..., Path]:
    """`write_wav` as a fixture, for tests that build tiny corpora in tmp_path."""
    return write_wav
