"""Audio sources for streaming: a file (optionally paced like playback), raw PCM on stdin, a microphone.

Each yields float32 mono blocks at the model's sample rate, resampling chunk-wise without seams.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from ser.config.errors import UserError
from ser.extras import install_hint

BLOCK_SECONDS = 0.1  # chunk size read from files/stdin; a microphone delivers blocks of this length too
STDIN_FORMATS = {"f32": np.dtype("<f4"), "s16": np.dtype("<i2")}


class LiveInputError(UserError, RuntimeError):
    """An audio source cannot be opened (no sounddevice, no PortAudio, no input device, bad stdin)."""


def file_chunks(
    path: str | Path, sample_rate: int, realtime: bool = False, block: float = BLOCK_SECONDS
) -> Iterator[np.ndarray]:
    """A file as blocks of `block` seconds at `sample_rate`; with `realtime`, paced like playback.

    The file is read (and an unusable one raises AudioError) when this is called, not on first iteration.
    """
    from ser.data.audio import load_audio

    wave = load_audio(path, sample_rate, normalize="none")  # windows are normalised one by one
    step = max(int(round(block * sample_rate)), 1)

    def blocks() -> Iterator[np.ndarray]:
        began = time.monotonic()
        for i, offset in enumerate(range(0, wave.shape[0], step)):
            if realtime:
                time.sleep(max(0.0, began + i * block - time.monotonic()))
            yield wave[offset : offset + step]

    return blocks()


def stdin_chunks(
    stream: BinaryIO, sample_rate: int, fmt: str = "f32", rate: int | None = None, block: float = 0.1
) -> Iterator[np.ndarray]:
    """Raw headerless mono PCM (little-endian float32 in [-1, 1] or signed 16-bit) -> float32 blocks.

    `rate` is the stream's sample rate (default: the model's); other rates are resampled on the fly.
    """
    if fmt not in STDIN_FORMATS:
        raise LiveInputError(f"--format must be one of {sorted(STDIN_FORMATS)}, got {fmt!r}")
    dtype = STDIN_FORMATS[fmt]
    if rate is not None and rate <= 0:
        raise LiveInputError(f"--rate must be a positive sample rate in Hz, got {rate}")
    rate = rate or sample_rate
    resample = _stream_resampler(rate, sample_rate)
    block_bytes = max(int(round(block * rate)), 1) * dtype.itemsize
    pending = b""
    while True:
        data = stream.read(block_bytes)
        if not data:
            break
        pending += data
        usable = len(pending) - len(pending) % dtype.itemsize
        samples, pending = np.frombuffer(pending[:usable], dtype=dtype), pending[usable:]
        if samples.size:
            yield resample(_checked(_to_float(samples), fmt), False)
    if pending:
        print(f"ser live: ignored {len(pending)} trailing stdin byte(s)", file=sys.stderr)
    tail = resample(np.zeros(0, dtype=np.float32), True)
    if tail.size:
        yield tail


PCM_LIMIT = 16.0  # float PCM is in [-1, 1]; far beyond it the bytes are not audio (or not --format f32)


def _checked(samples: np.ndarray, fmt: str) -> np.ndarray:
    """Refuse float samples that cannot be audio (NaN, inf, |x| > PCM_LIMIT): they gave NaN probabilities."""
    bad = ~np.isfinite(samples) | (np.abs(samples) > PCM_LIMIT)
    if bad.any():
        value = samples[int(np.argmax(bad))]
        raise LiveInputError(
            f"stdin holds {value!r} where {fmt} PCM samples in [-1, 1] were expected: not raw mono "
            "float32 audio (use --format s16 for 16-bit PCM)"
        )
    return samples


def _to_float(samples: np.ndarray) -> np.ndarray:
    if samples.dtype.kind == "i":
        return (samples.astype(np.float32) / 32768.0).astype(np.float32)
    return samples.astype(np.float32)


def _stream_resampler(source: int, target: int) -> Callable[[np.ndarray, bool], np.ndarray]:
    """Chunk-wise resampling without seams at chunk edges (soxr keeps state between chunks)."""
    if source == target:
        return lambda x, last: x
    import soxr

    stream = soxr.ResampleStream(source, target, 1, dtype="float32")
    return lambda x, last: stream.resample_chunk(np.ascontiguousarray(x, dtype=np.float32), last=last)


def _import_sounddevice() -> Any:
    try:
        import sounddevice as sd
    except ImportError:
        raise LiveInputError(
            "microphone input needs the 'sounddevice' package, which is not installed "
            f"({install_hint('ui')}); use --file AUDIO or --stdin instead"
        ) from None
    except OSError as exc:  # sounddevice raises OSError when the PortAudio library is missing
        raise LiveInputError(
            f"microphone input is unavailable: {exc} (install PortAudio, e.g. apt-get install "
            "libportaudio2); use --file AUDIO or --stdin instead"
        ) from None
    return sd


def microphone_chunks(sample_rate: int, block: float = BLOCK_SECONDS) -> Iterator[np.ndarray]:
    """Blocks from the default input device until interrupted; resampled if the device refuses our rate."""
    import queue

    sd = _import_sounddevice()
    try:
        device = sd.query_devices(kind="input")
    except Exception as exc:  # PortAudioError / ValueError when there is no input device
        raise LiveInputError(
            f"no audio input device found ({exc}); use --file AUDIO or --stdin instead"
        ) from None
    rate = sample_rate
    try:
        sd.check_input_settings(samplerate=sample_rate, channels=1, dtype="float32")
    except Exception:
        rate = int(device["default_samplerate"])
    resample = _stream_resampler(rate, sample_rate)
    blocks: queue.Queue[np.ndarray] = queue.Queue()

    def callback(data: np.ndarray, frames: int, when: Any, status: Any) -> None:
        if status:
            print(f"ser live: input {status}", file=sys.stderr)
        blocks.put(data[:, 0].copy())

    try:
        stream = sd.InputStream(
            samplerate=rate, channels=1, dtype="float32", blocksize=int(block * rate), callback=callback
        )
    except Exception as exc:
        raise LiveInputError(f"cannot open the microphone ({exc}); use --file AUDIO or --stdin") from None
    with stream:
        while True:
            yield resample(blocks.get(), False)
