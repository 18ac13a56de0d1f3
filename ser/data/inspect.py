"""`ser data inspect`: what a corpus folder holds before anything is trained on it.

Counts per label and speaker, durations, sample rates, and every skipped file with its reason, so a
mis-named or broken file is seen before it silently shrinks a class.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any, Optional

from ser.config import SyntheticConfig
from ser.data.audio import audio_info
from ser.data.corpora import as_spec, scan_corpus
from ser.data.corpora.synthetic import synthetic_root
from ser.data.labels import rare_label_warnings, sort_labels


def inspect_corpus(
    spec: Any, synthetic: Optional[SyntheticConfig] = None, progress: bool = False
) -> dict[str, Any]:
    """A JSON-able summary of one corpus; raises CorpusError like `scan_corpus` when it is unusable."""
    spec = as_spec(spec)
    if spec.name == "synthetic":  # materialise once so the report can name the real root
        spec = replace(spec, root=str(synthetic_root(spec, synthetic)))
    scan = scan_corpus(spec, check_audio=True, progress=progress, synthetic=synthetic)
    utts = scan.utterances
    labels = sort_labels(u.label for u in utts)
    label_counts = Counter(u.label for u in utts)
    per_speaker: dict[str, dict[str, int]] = {}
    for speaker in sorted({u.speaker for u in utts}):
        counts = Counter(u.label for u in utts if u.speaker == speaker)
        per_speaker[speaker] = {label: counts[label] for label in labels}
    speaker_gender = {u.speaker: u.gender or "unknown" for u in utts}
    infos = [audio_info(u.path) for u in utts]
    durations = [info["duration"] for info in infos]
    return {
        "corpus": spec.name,
        "root": os.path.abspath(os.path.expanduser(spec.root)) if spec.root else None,
        "utterances": len(utts),
        "speakers": len(per_speaker),
        "labels": {label: label_counts[label] for label in labels},
        "per_speaker": per_speaker,
        "genders": dict(sorted(Counter(speaker_gender.values()).items())),
        "sessions": len({u.session for u in utts if u.session is not None}),
        "duration": {
            "min": min(durations),
            "mean": sum(durations) / len(durations),
            "max": max(durations),
            "total": sum(durations),
        },
        "sample_rates": dict(sorted(Counter(info["sample_rate"] for info in infos).items())),
        "channels": dict(sorted(Counter(info["channels"] for info in infos).items())),
        "formats": dict(sorted(Counter(info["format"] for info in infos).items())),
        "skipped": [{"path": s.path, "reason": s.reason} for s in scan.skipped],
        "warnings": [
            *scan.warnings,
            *rare_label_warnings(label_counts, {u.label: u.path for u in reversed(utts)}),
        ],
    }


def _relative(path: str, root: Optional[str]) -> str:
    if root:
        try:
            return str(Path(path).relative_to(root))
        except ValueError:
            pass
    return path


def print_report(report: dict[str, Any], console: Any = None) -> None:
    """Print an `inspect_corpus` report as rich tables."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    total = max(report["utterances"], 1)
    console.print(
        f"[bold]{report['corpus']}[/bold] at {report['root']}: {report['utterances']} utterances, "
        f"{report['speakers']} speakers, {len(report['labels'])} labels, {len(report['skipped'])} skipped"
    )
    for warning in report["warnings"]:  # first: e.g. folds cannot be speaker-independent, and the fix
        console.print(f"[yellow]warning:[/yellow] {warning}")

    table = Table(title="Labels")
    table.add_column("label")
    table.add_column("utterances", justify="right")
    table.add_column("share", justify="right")
    for label, count in report["labels"].items():
        table.add_row(label, str(count), f"{100 * count / total:.1f}%")
    console.print(table)

    table = Table(title="Speakers x labels", box=None, pad_edge=False, header_style="bold underline")
    table.add_column("speaker", no_wrap=True)
    for label in report["labels"]:
        table.add_column(label, justify="right")
    table.add_column("total", justify="right")
    prefix = f"{report['corpus']}:"
    for speaker, counts in report["per_speaker"].items():
        cells = [str(counts.get(label, 0)) for label in report["labels"]]
        table.add_row(speaker.removeprefix(prefix), *cells, str(sum(counts.values())))
    console.print(table)

    dur = report["duration"]
    console.print(
        f"duration (s): min {dur['min']:.2f}  mean {dur['mean']:.2f}  max {dur['max']:.2f}  "
        f"total {dur['total'] / 60:.1f} min"
    )
    fmt = ", ".join
    console.print(f"sample rates: {fmt(f'{r} Hz x {n}' for r, n in report['sample_rates'].items())}")
    console.print(f"channels: {fmt(f'{c} x {n}' for c, n in report['channels'].items())}")
    console.print(f"speaker genders: {fmt(f'{g} x {n}' for g, n in report['genders'].items())}")
    if report.get("sessions"):
        console.print(f"sessions: {report['sessions']} (data.fold_by=session leaves one out per fold)")

    if report["skipped"]:
        table = Table(title=f"Skipped files ({len(report['skipped'])})")
        table.add_column("file", overflow="fold")
        table.add_column("reason", overflow="fold")
        for item in report["skipped"]:
            table.add_row(_relative(item["path"], report["root"]), item["reason"])
        console.print(table)
    else:
        console.print("skipped: none")
