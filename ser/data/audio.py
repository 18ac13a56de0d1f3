"""Reading audio files into validated mono float32 waveforms.

Every way a file can be unusable (missing, not audio, empty, truncated, silent, NaN) becomes one
`AudioError` with a reason, so corpus scans can report each bad file instead of crashing mid-epoch.
soundfile detects the container from the file's content, so a FLAC file named `.wav` still loads.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from ser.config.errors import UserError

SILENCE_PEAK = 1e-4  # below this peak a file carries no usable signal
SAMPLE_RATES = (1000, 384000)  # a header rate outside this range is damage or a crafted file, not speech
MAX_SECONDS = 3600.0  # decoded length cap (before any resampling): an hour is no utterance
RMS_TARGET = 0.1
NORMALIZE_MODES = ("none", "peak", "rms")
CROP_MODES = ("center", "start")

# libsndfile logs "data : 16000 (should be 11999)" when the header promises more bytes than exist;
# it then silently reads fewer frames, so we read the log to notice truncation.
_DECLARED_VS_ACTUAL = re.compile(r"^\s*(data|SSND)\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)
_STREAMING_SIZES = {0, 0xFFFFFFFF, 0x7FFFFFFF}  # placeholders written by streaming encoders


class AudioError(UserError, ValueError):
    """A file cannot be used as audio; `reason` says why in a few words."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")

    def __reduce__(self) -> tuple[Any, ...]:  # keep picklable across worker processes
        return (type(self), (self.path, self.reason))


def _open_checked(path: Path) -> sf.SoundFile:
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:  # libsndfile cannot open it, and it was reported as "unreadable audio"
        shown = os.fsencode(str(path)).decode("utf-8", "backslashreplace")
        raise AudioError(shown, "file name is not valid UTF-8: rename it") from None
    if not path.exists():
        raise AudioError(path, "file does not exist")
    if not path.is_file():
        raise AudioError(path, "not a regular file")
    if path.stat().st_size == 0:
        raise AudioError(path, "empty file (0 bytes)")
    try:
        return sf.SoundFile(str(path))
    except Exception as exc:  # LibsndfileError, TypeError on odd formats
        raise AudioError(path, f"unreadable, not a supported audio file ({_short(exc)})") from None


def _short(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
    if text.startswith(("Error opening", "Error :")):  # drop libsndfile's prefix, keep its cause
        text = text.split(": ", 1)[-1].strip()
    return text.rstrip(".")


def _truncation(extra_info: str) -> str | None:
    for match in _DECLARED_VS_ACTUAL.finditer(extra_info):
        declared, actual = int(match.group(2)), int(match.group(3))
        if declared > actual and declared not in _STREAMING_SIZES:
            return f"truncated: header declares {declared} data bytes, file holds {actual}"
    return None


def _check_header(path: Path, snd: sf.SoundFile, max_seconds: float | None) -> None:
    """Refuse absurd sample rates and over-long audio from the header, before decoding or resampling a
    sample (a 1 MB upload claiming 100 Hz would otherwise resample to gigabytes)."""
    low, high = SAMPLE_RATES
    if not low <= snd.samplerate <= high:
        raise AudioError(
            path, f"implausible sample rate {snd.samplerate} Hz in the header (expected {low}-{high} Hz)"
        )
    limit = MAX_SECONDS if max_seconds is None else max_seconds
    seconds = snd.frames / snd.samplerate
    if seconds > limit:
        raise AudioError(path, f"too long: {seconds:.0f} s of audio (the limit is {limit:g} s)")


def _decode(path: str | Path, max_seconds: float | None = None) -> tuple[np.ndarray, int]:
    """Read all frames as float32 (frames, channels) and validate them; one file read."""
    path = Path(path)
    with _open_checked(path) as snd:
        if snd.frames == 0:
            raise AudioError(path, "zero frames (no audio data)")
        _check_header(path, snd, max_seconds)
        truncated = _truncation(snd.extra_info)
        if truncated:
            raise AudioError(path, truncated)
        expected = snd.frames
        try:
            data = snd.read(dtype="float32", always_2d=True)
        except Exception as exc:
            raise AudioError(path, f"corrupt audio data ({_short(exc)})") from None
        rate = int(snd.samplerate)
    if data.shape[0] == 0:
        raise AudioError(path, "zero frames (no audio data)")
    if data.shape[0] < expected:
        raise AudioError(path, f"truncated: read {data.shape[0]} of {expected} frames")
    finite = np.isfinite(data)
    if not finite.all():
        raise AudioError(path, f"{int((~finite).sum())} NaN/inf samples")
    peak = float(np.abs(data).max())
    if peak < SILENCE_PEAK:
        raise AudioError(path, f"silent (peak {peak:.2g})")
    return data, rate


def validate_audio(path: str | Path) -> dict[str, Any]:
    """Decode a file once and return `audio_info`-style facts; raises AudioError when unusable."""
    data, rate = _decode(path)
    return {
        "sample_rate": rate,
        "channels": int(data.shape[1]),
        "frames": int(data.shape[0]),
        "duration": data.shape[0] / rate,
        "peak": float(np.abs(data).max()),
    }


def normalize_wave(wave: np.ndarray, mode: str = "none") -> np.ndarray:
    """Scale a waveform: "peak" to max |x| = 1, "rms" to RMS 0.1 with gain capped so |x| <= 1."""
    if mode not in NORMALIZE_MODES:
        raise ValueError(f"normalize must be one of {list(NORMALIZE_MODES)}, got {mode!r}")
    if mode == "none":
        return wave
    peak = float(np.abs(wave).max()) if wave.size else 0.0
    if peak == 0.0:
        return wave
    if mode == "peak":
        gain = 1.0 / peak
    else:
        rms = float(np.sqrt(np.mean(np.square(wave, dtype=np.float64))))
        gain = min(RMS_TARGET / rms, 1.0 / peak)  # capping the gain avoids clipping distortion
    return (wave * gain).astype(np.float32)


def load_audio(
    path: str | Path,
    sample_rate: int | None = 16000,
    normalize: str = "none",
    max_seconds: float | None = None,
) -> np.ndarray:
    """Mono float32 waveform at `sample_rate` (None keeps the file's rate), validated and normalised;
    AudioError for a file longer than `max_seconds` (default MAX_SECONDS) or with an absurd rate."""
    if normalize not in NORMALIZE_MODES:
        raise ValueError(f"normalize must be one of {list(NORMALIZE_MODES)}, got {normalize!r}")
    data, rate = _decode(path, max_seconds)
    wave = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    if sample_rate is not None and rate != sample_rate:
        import librosa  # imported lazily: it is slow to import and most reads need no resampling

        wave = librosa.resample(wave, orig_sr=rate, target_sr=sample_rate, res_type="soxr_hq")
    return np.ascontiguousarray(normalize_wave(wave, normalize), dtype=np.float32)


def audio_info(path: str | Path) -> dict[str, Any]:
    """Header facts (rate, channels, frames, duration, format) without decoding the samples."""
    path = Path(path)
    with _open_checked(path) as snd:
        return {
            "sample_rate": int(snd.samplerate),
            "channels": int(snd.channels),
            "frames": int(snd.frames),
            "duration": snd.frames / snd.samplerate if snd.samplerate else 0.0,
            "format": str(snd.format),
            "subtype": str(snd.subtype),
        }


def fix_length(wave: np.ndarray, n_samples: int, crop: str = "center") -> np.ndarray:
    """Crop or zero-pad to exactly `n_samples`; "center" keeps the window centred, "start" anchors it."""
    if crop not in CROP_MODES:
        raise ValueError(f"crop must be one of {list(CROP_MODES)}, got {crop!r}")
    if n_samples < 0:
        raise ValueError(f"n_samples must be >= 0, got {n_samples}")
    length = wave.shape[-1]
    if length == n_samples:
        return wave
    if length > n_samples:
        start = (length - n_samples) // 2 if crop == "center" else 0
        return wave[..., start : start + n_samples]
    missing = n_samples - length
    before = missing // 2 if crop == "center" else 0
    pad = [(0, 0)] * (wave.ndim - 1) + [(before, missing - before)]
    return np.pad(wave, pad)
