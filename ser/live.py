"""`ser live`: label a stream of audio (microphone, file, stdin) window by window as it arrives.

`StreamingScorer` is the library piece: it takes chunks of any size, keeps the last window of samples in a
ring buffer and scores every sliding window as soon as its last sample arrives. The windows it scores are
exactly those `ser.predict.score_wave` scores on the whole signal (same starts, and `flush()` adds the same
tail window), so live and offline predictions agree; unlike `score_wave`, each window is normalised on its
own (a stream has no "whole file" to normalise), like one training clip. A speaker-normalised model gets
the statistics of every window heard so far (the stream is one speaker), so its first windows are noisier.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import numpy as np

from ser.data.audio import SILENCE_PEAK, fix_length, normalize_wave

if TYPE_CHECKING:  # importing ser.predict pulls in torch; `ser --help` should not pay for it
    from ser.data.normalize import SpeakerStats
    from ser.predict import Scorer

BLOCK_SECONDS = 0.1  # chunk size read from files/stdin; a microphone delivers blocks of this length too
STDIN_FORMATS = {"f32": np.dtype("<f4"), "s16": np.dtype("<i2")}


class LiveInputError(RuntimeError):
    """An audio source cannot be opened (no sounddevice, no PortAudio, no input device, bad stdin)."""


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
        self._speaker: SpeakerStats | None = None
        if self.scorer.speaker_normalized:
            from ser.data.normalize import SpeakerStats

            self._speaker = SpeakerStats()

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
        if self._speaker is not None:
            self._speaker.update(self.scorer.features(wave[None, :]))
        probs = self.scorer.probabilities(wave[None, :], self._speaker)[0].astype(np.float64)
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


# --------------------------------------------------------------------------------------------- sources
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
            yield resample(_to_float(samples), False)
    if pending:
        print(f"ser live: ignored {len(pending)} trailing stdin byte(s)", file=sys.stderr)
    tail = resample(np.zeros(0, dtype=np.float32), True)
    if tail.size:
        yield tail


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
            "(pip install 'ser[ui]'); use --file AUDIO or --stdin instead"
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


# --------------------------------------------------------------------------------------------- display
class LiveView:
    """Rich live panel: current window's label, raw and smoothed probability bars, the smoothed track."""

    TRACK = 48  # smoothed labels kept for the track line

    def __init__(self, labels: list[str], source: str) -> None:
        self.labels = labels
        self.source = source
        self.track: deque[str] = deque(maxlen=self.TRACK)
        self.latencies: deque[float] = deque(maxlen=100)
        self.last: WindowResult | None = None

    def update(self, result: WindowResult) -> None:
        self.last = result
        self.track.append(result.smoothed_label)
        self.latencies.append(result.latency_ms)

    def __rich__(self) -> Any:
        from rich.panel import Panel
        from rich.table import Table
        from rich.text import Text

        r = self.last
        if r is None:
            return Panel(Text("waiting for the first full window ..."), title=f"ser live: {self.source}")
        table = Table(box=None, pad_edge=False, expand=False)
        table.add_column("emotion")
        table.add_column("now", justify="right")
        table.add_column("", min_width=20)
        table.add_column("smoothed", justify="right")
        table.add_column("", min_width=20)
        for label in self.labels:
            p, s = r.probabilities[label], r.smoothed[label]
            style = "bold green" if label == r.smoothed_label else ""
            table.add_row(Text(label, style=style), f"{p:.2f}", _bar(p), f"{s:.2f}", _bar(s))
        mean = sum(self.latencies) / len(self.latencies)
        head = Text.assemble(
            ("now: ", "dim"),
            (r.label, "bold"),
            ("   smoothed: ", "dim"),
            (r.smoothed_label, "bold green"),
            (f"   window {r.index} [{r.start:.1f}-{r.end:.1f} s]", "dim"),
            (f"   latency {r.latency_ms:.1f} ms (mean {mean:.1f})", "dim"),
            (" (silent)" if r.silent else "", "yellow"),
        )
        track = Text("track: " + " ".join(label[:3] for label in self.track), style="cyan")
        from rich.console import Group

        return Panel(Group(head, table, track), title=f"ser live: {self.source}")


def _bar(value: float, width: int = 20) -> str:
    full = int(round(max(0.0, min(1.0, value)) * width))
    return "█" * full + "·" * (width - full)


# ------------------------------------------------------------------------------------------------- CLI
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


def cmd_live(args: argparse.Namespace) -> int:
    from ser.predict import load_scorer

    if args.file and args.stdin:
        print("ser: error: give --file or --stdin, not both", file=sys.stderr)
        return 2
    scorer = load_scorer(args.checkpoint)
    streamer = StreamingScorer(scorer, window=args.window, hop=args.hop, smoothing=args.smoothing)
    sr = scorer.sample_rate
    try:
        if args.file:
            source = str(args.file)
            chunks = file_chunks(args.file, sr, realtime=args.realtime)
        elif args.stdin:
            source = f"stdin ({args.format}, {args.rate or sr} Hz)"
            chunks = stdin_chunks(sys.stdin.buffer, sr, fmt=args.format, rate=args.rate)
        else:
            source = "microphone"
            chunks = microphone_chunks(sr)
            next_chunk = next(chunks)  # opens the device now, so a missing one fails before any display
            chunks = _prepend(next_chunk, chunks)
        if args.json:
            n = run_stream(streamer, chunks, lambda r: print(json.dumps(r.to_dict()), flush=True))
        else:
            n = _run_rich(streamer, chunks, source)
    except LiveInputError as exc:
        print(f"ser: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0
    except BrokenPipeError:  # `ser live ... --json | head`: the reader left; that is not an error
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - keeps the interpreter's final flush quiet
        return 0
    if n == 0:
        print("ser: error: the stream held no audio", file=sys.stderr)
        return 1
    return 0


def _prepend(first: np.ndarray, rest: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
    yield first
    yield from rest


def _run_rich(streamer: StreamingScorer, chunks: Iterator[np.ndarray], source: str) -> int:
    from rich.live import Live

    view = LiveView(streamer.labels, source)
    with Live(view, refresh_per_second=10, transient=False) as live:
        n = run_stream(streamer, chunks, lambda r: (view.update(r), live.refresh()))
    return n


def add_live_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register `ser live` on the CLI's sub-parsers."""
    p = sub.add_parser(
        "live",
        help="label a live stream (microphone, file or stdin) window by window",
        description=(
            "Score sliding windows of a stream as they arrive. Default source: the default microphone "
            "(needs sounddevice + PortAudio). --stdin reads raw headerless mono PCM: little-endian "
            "float32 in [-1, 1] (--format f32, default) or signed 16-bit (--format s16), at --rate Hz "
            "(default: the model's sample rate), e.g. "
            "`ffmpeg -i in.mp3 -f f32le -ac 1 -ar 16000 - | ser live model.ckpt --stdin`."
        ),
    )
    p.add_argument("checkpoint")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--file", default=None, help="stream this audio file instead of the microphone")
    source.add_argument("--stdin", action="store_true", help="read raw PCM from stdin (see above)")
    p.add_argument("--format", default="f32", choices=sorted(STDIN_FORMATS), help="stdin sample format")
    p.add_argument("--rate", type=int, default=None, help="stdin sample rate in Hz (default: the model's)")
    p.add_argument("--window", type=float, default=None, help="window seconds (default: training length)")
    p.add_argument("--hop", type=float, default=None, help="hop seconds (default: half a window)")
    p.add_argument(
        "--smoothing", type=float, default=0.5, help="EMA alpha in (0, 1]; 1 = no smoothing (default 0.5)"
    )
    p.add_argument("--realtime", action="store_true", help="with --file: play at real-time pace")
    p.add_argument("--json", action="store_true", help="one JSON object per window instead of the display")
    p.set_defaults(func=cmd_live)
    return p
