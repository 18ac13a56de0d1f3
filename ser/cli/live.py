"""`ser live CKPT [--file F | --stdin]`: the streaming scorer with a live terminal display or JSON lines."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import deque
from collections.abc import Iterator
from typing import Any

import numpy as np

from ser.cli.args import int_in, positive_float
from ser.inference.sources import (
    STDIN_FORMATS,
    LiveInputError,
    file_chunks,
    microphone_chunks,
    stdin_chunks,
)
from ser.inference.streaming import StreamingScorer, WindowResult, run_stream


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


def cmd_live(args: argparse.Namespace) -> int:
    from ser.inference.scorer import load_scorer

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
    p.add_argument(
        "--rate",
        type=int_in(1000, 768000, "--rate"),
        default=None,
        help="stdin sample rate in Hz (default: the model's)",
    )
    p.add_argument(
        "--window", type=positive_float, default=None, help="window seconds (default: training length)"
    )
    p.add_argument("--hop", type=positive_float, default=None, help="hop seconds (default: half a window)")
    p.add_argument(
        "--smoothing", type=float, default=0.5, help="EMA alpha in (0, 1]; 1 = no smoothing (default 0.5)"
    )
    p.add_argument("--realtime", action="store_true", help="with --file: play at real-time pace")
    p.add_argument("--json", action="store_true", help="one JSON object per window instead of the display")
    p.set_defaults(func=cmd_live)
    return p
