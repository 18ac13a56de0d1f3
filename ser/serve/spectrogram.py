"""The predict page's picture of the clip: a log-mel spectrogram, small enough to send with every answer.

The same LogMel the models use (librosa's filters), 64 mel bands, 10 ms hop, 80 dB range, whatever the
checkpoint's own features are (an SSL model has no spectrogram to show). Long clips are max-pooled in
time to at most `max_frames` columns, so a 10-minute upload still answers with about 100 KB; values are
quantised to bytes (0 = 80 dB below the clip's peak, 255 = the peak) and base64-encoded.
"""

from __future__ import annotations

import base64
from functools import lru_cache
from typing import Any

import numpy as np
import torch

from ser.data.features import LogMel

N_MELS = 64
HOP_SECONDS = 0.01
TOP_DB = 80.0


@lru_cache(maxsize=4)
def _frontend(sample_rate: int) -> LogMel:
    """One LogMel per sample rate (its mel filter bank is built once, not per request)."""
    hop = max(1, round(HOP_SECONDS * sample_rate))
    n_fft = 1 << int(np.ceil(np.log2(0.025 * sample_rate)))  # >= 25 ms
    return LogMel(sample_rate, n_fft=n_fft, hop_length=hop, n_mels=N_MELS, top_db=TOP_DB)


def display_spectrogram(wave: np.ndarray, sample_rate: int, max_frames: int = 1200) -> dict[str, Any]:
    """{n_mels, frames, seconds_per_frame, fmax, db: [min, max], data: base64 uint8 [n_mels, frames],
    row 0 the lowest band}."""
    logmel = _frontend(int(sample_rate))
    hop = logmel.hop_length
    with torch.no_grad():
        db = logmel(torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32))).numpy()
    pool = max(1, int(np.ceil(db.shape[1] / max_frames)))
    if pool > 1:
        usable = db.shape[1] // pool * pool
        tail = db[:, usable:]
        db = db[:, :usable].reshape(N_MELS, -1, pool).max(axis=2)
        if tail.shape[1]:
            db = np.concatenate([db, tail.max(axis=1, keepdims=True)], axis=1)
    top = float(db.max())
    scaled = np.clip((db - (top - TOP_DB)) / TOP_DB, 0.0, 1.0)
    data = np.round(scaled * 255).astype(np.uint8)
    return {
        "n_mels": N_MELS,
        "frames": int(data.shape[1]),
        "seconds_per_frame": hop * pool / sample_rate,
        "fmax": sample_rate / 2,
        "db": [round(top - TOP_DB, 1), round(top, 1)],
        "data": base64.b64encode(np.ascontiguousarray(data).tobytes()).decode("ascii"),
    }
