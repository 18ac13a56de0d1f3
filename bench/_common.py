"""What both benchmark scripts share: data arguments, the corpus subset, machine facts and the output format.

Each script prints a plain-text table and ends with one `RATIOS key=value x ...` line, so a reader (or a
test) can grep the result without parsing the table. Ratios are taken between variants measured in the
same run, interleaved, because absolute seconds on a shared machine mean little.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from omegaconf import DictConfig

RATIOS_PREFIX = "RATIOS"


def add_data_args(parser: argparse.ArgumentParser) -> None:
    """Corpus selection shared by the scripts: a real corpus via --data, else the synthetic one."""
    group = parser.add_argument_group("data")
    group.add_argument("--data", default=None, help="corpus root (e.g. /work/shared/data/ravdess-dev-16k)")
    group.add_argument(
        "--corpus",
        default=None,
        help="adapter for --data: ravdess | crema_d | tess | folder (default: ravdess)",
    )
    group.add_argument("--synthetic-speakers", type=int, default=8)
    group.add_argument("--synthetic-per-label", type=int, default=8, help="utterances per speaker and label")
    group.add_argument("--synthetic-labels", type=int, default=6, help="how many of the default labels")
    group.add_argument("--synthetic-duration", type=float, default=2.0, help="mean seconds per utterance")
    group.add_argument("--limit", type=int, default=0, help="use at most N files, spread over the corpus")
    group.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra config override (repeatable), e.g. --set data.audio.duration=1.0",
    )


def bench_config(args: argparse.Namespace, extra: Sequence[str] = ()) -> DictConfig:
    """The run's config from the project defaults, the data arguments, `extra`, then --set overrides."""
    from ser.config import SyntheticConfig, load_config

    overrides: list[str] = []
    if args.data:
        overrides += [f"data.corpus={args.corpus or 'ravdess'}", f"data.root={args.data}"]
    else:
        if args.corpus not in (None, "synthetic"):
            raise SystemExit(f"--corpus {args.corpus} needs --data PATH (the corpus root)")
        labels = SyntheticConfig().labels[: max(2, int(args.synthetic_labels))]
        overrides += [
            "data.corpus=synthetic",
            f"data.synthetic.speakers={args.synthetic_speakers}",
            f"data.synthetic.per_label={args.synthetic_per_label}",
            f"data.synthetic.labels=[{','.join(labels)}]",
            f"data.synthetic.duration={args.synthetic_duration}",
        ]
    return load_config(overrides=[*overrides, *extra, *args.overrides])


def select_dataset(cfg: DictConfig, limit: int = 0):
    """The scanned corpus (a `LabelledDataset`), cut to `limit` files taken evenly over the id order.

    Even spacing over ids keeps every speaker and most labels in a small subset, so speaker folds still
    have a train, val and test split.
    """
    from dataclasses import replace

    from ser.data.dataset import build_dataset

    data = build_dataset(cfg.data, check_audio=False, progress=False)
    utterances = sorted(data.utterances, key=lambda u: u.id)
    if 0 < limit < len(utterances):
        step = len(utterances) / limit
        utterances = [utterances[int(i * step)] for i in range(limit)]
    return replace(data, utterances=utterances)


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def safe_ratio(numerator: float, denominator: float) -> float:
    """numerator / denominator, with a 1 microsecond floor so a near-zero time gives a large finite ratio."""
    return float(numerator) / max(float(denominator), 1e-6)


def maxrss_mb() -> float:
    """This process's peak resident set so far, in MiB (ru_maxrss is KiB on Linux, bytes on macOS)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 1024


def machine_line() -> str:
    """Cores, load average and torch threads: the context any absolute number needs."""
    import torch

    try:
        load = "/".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        load = "n/a"
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (
        f"machine: {cores} usable cores, load average (1/5/15 min) {load}, torch {torch.__version__} "
        f"with {torch.get_num_threads()} threads"
    )


def format_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """A fixed-width text table; floats get 3 significant decimals, missing cells a dash."""

    def cell(value: Any) -> str:
        if value is None:
            return "-"
        if isinstance(value, float):
            return f"{value:.3f}" if abs(value) < 100 else f"{value:.1f}"
        return str(value)

    body = [[cell(row.get(col)) for col in columns] for row in rows]
    widths = [max(len(col), *(len(r[i]) for r in body)) for i, col in enumerate(columns)]
    lines = ["  ".join(col.ljust(w) for col, w in zip(columns, widths))]
    lines.append("  ".join("-" * w for w in widths))
    for cells in body:  # first column (the name) left-aligned, numbers right-aligned
        lines.append(
            "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths)))
        )
    return "\n".join(lines)


def ratios_line(ratios: Mapping[str, float]) -> str:
    """`RATIOS a=12.3x b=0.9x`: the one line a reader or a test looks for."""
    return RATIOS_PREFIX + " " + " ".join(f"{key}={value:.2f}x" for key, value in ratios.items())
