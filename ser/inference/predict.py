"""`ser predict`: label audio files or folders with a checkpoint, long files in sliding windows."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ser.config.errors import UserError
from ser.data.normalize import SpeakerStats
from ser.inference.packed import PackedStats
from ser.inference.scorer import load_scorer, score_wave, windows_of

AUDIO_SUFFIXES = (".wav", ".flac", ".aif", ".aiff", ".ogg")


def expand_audio_paths(items: list[str]) -> list[Path]:
    """Files as given; folders expanded recursively to their audio files (sorted)."""
    paths: list[Path] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file())
            if not found:
                raise FileNotFoundError(f"{path}: folder holds no audio files ({', '.join(AUDIO_SUFFIXES)})")
            paths.extend(found)
        else:
            paths.append(path)
    return paths


class SpeakerPatternError(UserError, ValueError):
    """`--speaker-pattern` is not a regular expression."""


# what a model that is not speaker-normalised standardises each clip with (data.features.normalize)
CLIP_NORMALIZATION = {
    "utterance": "per clip",
    "train": "training-split statistics",
    "none": "none",
}


def speaker_groups(
    paths: list[Path], pattern: str | None = None, same_speaker: bool = False
) -> tuple[list[str], list[str]]:
    """(group key, description) per file: the files whose statistics standardise it together.

    `same_speaker`: all files are one speaker. `pattern`: a regex searched in each path; its `speaker`
    group (or first group, or the whole match) names the speaker, so `Actor_(\\d+)` groups a RAVDESS
    folder by actor; a file it does not match is its own speaker. Neither: each file on its own (a folder
    of different speakers must not share statistics).
    """
    if same_speaker:
        return ["all"] * len(paths), [f"speaker: all {len(paths)} file(s) as one"] * len(paths)
    if pattern is None:
        return [f"file:{p}" for p in paths], ["speaker: this file"] * len(paths)
    try:
        regex = re.compile(pattern)
    except re.error as exc:
        raise SpeakerPatternError(
            f"--speaker-pattern {pattern!r} is not a regular expression: {exc}"
        ) from None
    keys = []
    for path in paths:
        match = regex.search(path.as_posix())
        if match is None:
            keys.append(f"file:{path}")
        elif "speaker" in regex.groupindex:
            keys.append(f"speaker:{match.group('speaker')}")
        else:
            keys.append(f"speaker:{match.group(1) if regex.groups else match.group(0)}")
    counts = {key: keys.count(key) for key in keys}
    described = [
        "speaker: this file (pattern did not match)"
        if key.startswith("file:")
        else f"speaker {key.split(':', 1)[1]!r}: {counts[key]} file(s)"
        for key in keys
    ]
    return keys, described


def predict_paths(
    checkpoint: str | Path,
    audio: list[str],
    window: float | None = None,
    hop: float | None = None,
    speaker_per_file: bool = True,
    speaker_pattern: str | None = None,
    same_speaker: bool = False,
) -> list[dict[str, Any]]:
    """One result per file; a file that cannot be read gives an `error` entry and the rest go on. Each
    result says in `normalization` what standardised its features.

    A speaker-normalised checkpoint standardises each file with its speaker's statistics: the files that
    `speaker_pattern` gives the same speaker, all files (`same_speaker`), or else the file alone
    (`speaker_per_file`, the default; kept as a parameter for callers that name it).
    """
    from ser.data.audio import AudioError, load_audio

    scorer = load_scorer(checkpoint)
    paths = expand_audio_paths(audio)
    keys, described = speaker_groups(paths, speaker_pattern, same_speaker)

    def waves():  # decoded again per pass rather than held: a folder may be a whole corpus
        for path in paths:
            try:
                yield path, load_audio(path, scorer.sample_rate, normalize=scorer.audio_normalize)
            except AudioError as exc:
                yield path, exc.reason

    stats: dict[str, SpeakerStats | PackedStats] = {}
    if scorer.speaker_normalized:
        shared = {key for key in keys if keys.count(key) > 1}  # a file alone needs no first pass
        if shared:
            for key, (_, wave) in zip(keys, waves()):
                if key in shared and not isinstance(wave, str):
                    scorer.speaker_stats(
                        windows_of(scorer, wave, window, hop)[2], stats.setdefault(key, scorer.new_stats())
                    )
    clip = CLIP_NORMALIZATION.get(str(scorer.checkpoint.cfg.data.features.normalize), "per clip")
    results = []
    for key, note, (path, wave) in zip(keys, described, waves()):
        if isinstance(wave, str):
            results.append({"path": str(path), "error": wave})
            continue
        speaker = stats.get(key)
        speaker = speaker if speaker is not None and speaker.count else None
        scored = score_wave(scorer, wave, window, hop, speaker)
        results.append(
            {"path": str(path), **scored, "normalization": note if scorer.speaker_normalized else clip}
        )
    return results


def display_names(paths: list[str]) -> list[str]:
    """File names, with as many parent folders as it takes to tell equal names apart (a long path cut
    from the right would show only its folders)."""
    parts = [Path(p).parts for p in paths]
    depth = 1
    while depth < max((len(p) for p in parts), default=1):
        names = ["/".join(p[-depth:]) for p in parts]
        if len(set(names)) == len(names):
            return names
        depth += 1
    return ["/".join(p[-depth:]) for p in parts]


def prediction_rows(results: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of the predictions table as plain strings: file, label, one probability per
    class, windows, normalisation; a file that failed has its error in the last column."""
    labels = next((list(r["probabilities"]) for r in results if "probabilities" in r), [])
    header = ["file", "label", *labels, "windows", "normalisation"]
    rows = []
    for r, name in zip(results, display_names([r["path"] for r in results])):
        if "error" in r:
            rows.append([name, "error", *[""] * len(labels), "", r["error"]])
            continue
        cells = [f"{r['probabilities'][label]:.2f}" for label in labels]
        rows.append([name, r["label"], *cells, str(len(r["windows"])), r.get("normalization", "")])
    return header, rows


def plain_table(header: list[str], rows: list[list[str]]) -> str:
    """Columns padded to their widest cell, two spaces apart, nothing cut: for a pipe, a file, or a
    terminal too narrow for the boxed table (where rich would squeeze columns to `l…`)."""
    widths = [max(len(str(c)) for c in column) for column in zip(header, *rows)]
    last = len(header) - 1

    def line(cells: list[str]) -> str:
        out = [
            cell.ljust(width) if i < 2 or i == last else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(cells, widths))
        ]
        return "  ".join(out).rstrip()

    return "\n".join([line(header), *(line(r) for r in rows)])


def print_predictions(results: list[dict[str, Any]], console: Any = None) -> None:
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    if not results:
        return
    header, rows = prediction_rows(results)
    widths = [max(len(str(c)) for c in column) for column in zip(header, *rows)]
    boxed = sum(widths) + 3 * len(widths) + 1  # the boxed table's width with every cell whole
    if not console.is_terminal or console.width < boxed:
        console.print(plain_table(header, rows), markup=False, highlight=False, soft_wrap=True)
        return
    table = Table(title="predictions")
    for i, column in enumerate(header):
        table.add_column(column, justify="right" if 1 < i < len(header) - 1 else "left", no_wrap=True)
    for row in rows:
        style = "red" if row[1] == "error" else None
        table.add_row(*row, style=style)
    console.print(table)
