"""Streaming prediction: label a stream of audio window by window as it arrives (`ser live`).

`StreamingScorer` takes chunks of any size, keeps the last window of samples in a
ring buffer and scores every sliding window as soon as its last sample arrives. The windows it scores are
exactly those `ser.predict.score_wave` scores on the whole signal (same starts, and `flush()` adds the same
tail window), so live and offline predictions agree; unlike `score_wave`, each window is normalised on its
own (a stream has no "whole file" to normalise), like one training clip. A speaker-normalised model gets
the statistics of every window heard so far (the stream is one speaker), so its first windows are noisier.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ser.data.audio import SILENCE_PEAK, fix_length, normalize_wave

if TYPE_CHECKING:  # importing the scorer pulls in torch; `ser --help` should not pay for it
    from ser.data.normalize import SpeakerStats
    from ser.inference.packed import PackedStats
    from ser.inference.scorer import Scorer


@dataclass
class WindowResult:
    """One scored window; times are seconds from the start of the stream."""

    index: int
    start: float
    end: float
    label: str
    probabilities: dict[str, float]
    smoothed: dict[str, float]
    smoothed_label: str
    latency_ms: float
    silent: bool = False  # window peak below the silence threshold: its label means little

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "start": round(self.start, 3),
            "end": round(self.end, 3),
            "label": self.label,
            "probabilities": {k: round(v, 4) for k, v in self.probabilities.items()},
            "smoothed_label": self.smoothed_label,
            "smoothed": {k: round(v, 4) for k, v in self.smoothed.items()},
            "latency_ms": round(self.latency_ms, 2),
            "silent": self.silent,
        }


class RingBuffer:
    """Fixed-capacity float32 ring that returns its last `capacity` samples in arrival order."""

    def __init__(self, capacity: int) -> None:
        if capacity <= 0:
            raise ValueError(f"ring capacity must be positive, got {capacity}")
        self._data = np.zeros(capacity, dtype=np.float32)
        self._pos = 0  # next write index
        self.filled = 0

    @property
    def capacity(self) -> int:
        return self._data.shape[0]

    def write(self, samples: np.ndarray) -> None:
        cap = self.capacity
        if samples.shape[0] >= cap:  # only the newest `cap` samples can ever be read
            self._data[:] = samples[-cap:]
            self._pos, self.filled = 0, cap
            return
        first = min(samples.shape[0], cap - self._pos)
        self._data[self._pos : self._pos + first] = samples[:first]
        self._data[: samples.shape[0] - first] = samples[first:]
        self._pos = (self._pos + samples.shape[0]) % cap
        self.filled = min(cap, self.filled + samples.shape[0])

    def last(self, n: int) -> np.ndarray:
        """The newest `n` samples (n <= filled), oldest first, as a copy."""
        if n > self.filled:
            raise ValueError(f"asked for {n} samples, ring holds {self.filled}")
        idx = (self._pos - n + np.arange(n)) % self.capacity
        return self._data[idx]


class StreamingScorer:
    """Scores sliding windows of a stream as they complete; see the module docstring for the contract.

    window: seconds per window (None: the checkpoint's training clip length); hop: seconds between window
    starts (None: half a window); smoothing: alpha of the exponential moving average of probabilities
    (1 = no smoothing, smaller = smoother; `smoothed = alpha * p + (1 - alpha) * previous`).
    """

    def __init__(
        self, scorer: Scorer, window: float | None = None, hop: float | None = None, smoothing: float = 0.5
    ) -> None:
        sr = scorer.sample_rate
        self.scorer = scorer
        self.window = int(round(window * sr)) if window else scorer.window_samples
        self.hop = int(round(hop * sr)) if hop else max(self.window // 2, 1)
        if self.window <= 0 or self.hop <= 0:
            raise ValueError(f"window and hop must be positive, got window={window} hop={hop}")
        if not 0.0 < smoothing <= 1.0:
            raise ValueError(f"smoothing must be in (0, 1], got {smoothing}")
        self.smoothing = float(smoothing)
        self.labels = list(scorer.labels)
        self._crop = str(scorer.checkpoint.cfg.data.audio.crop)
        self.reset()

    def reset(self) -> None:
        """Forget the stream: the next sample pushed is time 0."""
        self._ring = RingBuffer(self.window)
        self.total = 0  # samples received so far
        self._next_start = 0  # absolute start of the next full window
        self._last_end = 0  # absolute end of the last scored window
        self._ema: np.ndarray | None = None
        self.count = 0
        # a speaker-normalised model: the speaker's statistics so far, over every window heard
        self._speaker: SpeakerStats | PackedStats | None = None
        if self.scorer.speaker_normalized:
            self._speaker = self.scorer.new_stats()

    @property
    def sample_rate(self) -> int:
        return self.scorer.sample_rate

    def push(self, chunk: np.ndarray) -> list[WindowResult]:
        """Add mono float samples at `sample_rate`; returns the windows this chunk completed, in order."""
        chunk = np.asarray(chunk, dtype=np.float32).reshape(-1)
        results: list[WindowResult] = []
        offset = 0
        while offset < chunk.shape[0]:
            due = self._next_start + self.window  # absolute sample count that completes the next window
            take = min(chunk.shape[0] - offset, due - self.total)  # due > total always holds here
            self._ring.write(chunk[offset : offset + take])
            self.total += take
            offset += take
            if self.total == due:
                results.append(self._score(self._ring.last(self.window), self._next_start, due))
                self._next_start += self.hop
        return results

    def flush(self) -> list[WindowResult]:
        """End of stream: score the tail like `score_wave` does (last window ends at the last sample)."""
        if self.total == 0:
            return []
        if self.total < self.window:  # never completed a window: score what there is, padded
            return [self._score(self._ring.last(self.total), 0, self.total)]
        if self._last_end < self.total:
            return [self._score(self._ring.last(self.window), self.total - self.window, self.total)]
        return []

    def _score(self, wave: np.ndarray, start: int, end: int) -> WindowResult:
        began = time.perf_counter()
        peak = float(np.abs(wave).max()) if wave.size else 0.0
        wave = normalize_wave(wave, self.scorer.audio_normalize)
        wave = fix_length(wave, self.scorer.window_samples, crop=self._crop)
        x = self.scorer.features(wave[None, :])  # once: for the speaker's statistics and for the model
        if self._speaker is not None:
            self._speaker.update(x)
        probs = self.scorer.score_features(x, self._speaker)[0].astype(np.float64)
        latency = (time.perf_counter() - began) * 1000.0
        a = self.smoothing
        self._ema = probs if self._ema is None else a * probs + (1.0 - a) * self._ema
        self._last_end = end
        sr = self.sample_rate
        result = WindowResult(
            index=self.count,
            start=start / sr,
            end=end / sr,
            label=self.labels[int(probs.argmax())],
            probabilities=dict(zip(self.labels, map(float, probs))),
            smoothed=dict(zip(self.labels, map(float, self._ema))),
            smoothed_label=self.labels[int(self._ema.argmax())],
            latency_ms=latency,
            silent=peak < SILENCE_PEAK,
        )
        self.count += 1
        return result


def run_stream(
    streamer: StreamingScorer,
    chunks: Iterator[np.ndarray],
    on_result: Callable[[WindowResult], None],
) -> int:
    """Push every chunk, hand each scored window to `on_result`, flush at the end; returns windows scored."""
    n = 0
    for chunk in chunks:
        for result in streamer.push(chunk):
            on_result(result)
            n += 1
    for result in streamer.flush():
        on_result(result)
        n += 1
    return n
