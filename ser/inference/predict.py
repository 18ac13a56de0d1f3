"""`ser predict`: label audio files or folders with a checkpoint, long files in sliding windows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ser.data.normalize import SpeakerStats
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


def predict_paths(
    checkpoint: str | Path,
    audio: list[str],
    window: float | None = None,
    hop: float | None = None,
    speaker_per_file: bool = False,
) -> list[dict[str, Any]]:
    """One result per file; a file that cannot be read gives an `error` entry and the rest go on.

    A speaker-normalised checkpoint takes the files given together as one speaker (their pooled statistics
    standardise every file), or each file as its own speaker with `speaker_per_file`.
    """
    from ser.data.audio import AudioError, load_audio

    scorer = load_scorer(checkpoint)
    paths = expand_audio_paths(audio)

    def waves():  # decoded again per pass rather than held: a folder may be a whole corpus
        for path in paths:
            try:
                yield path, load_audio(path, scorer.sample_rate, normalize=scorer.audio_normalize)
            except AudioError as exc:
                yield path, exc.reason

    speaker = None
    if scorer.speaker_normalized and not speaker_per_file:
        speaker = SpeakerStats()
        for _, wave in waves():
            if not isinstance(wave, str):
                scorer.speaker_stats(windows_of(scorer, wave, window, hop)[2], speaker)
        speaker = speaker if speaker.count else None
    results = []
    for path, wave in waves():
        if isinstance(wave, str):
            results.append({"path": str(path), "error": wave})
        else:
            results.append({"path": str(path), **score_wave(scorer, wave, window, hop, speaker)})
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


def print_predictions(results: list[dict[str, Any]], console: Any = None) -> None:
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    if not results:
        return
    labels = next((list(r["probabilities"]) for r in results if "probabilities" in r), [])
    table = Table(title="predictions")
    table.add_column("file", no_wrap=True)
    table.add_column("label", style="bold")
    for label in labels:
        table.add_column(label, justify="right")
    table.add_column("windows", justify="right")
    names = display_names([r["path"] for r in results])
    for r, name in zip(results, names):
        if "error" in r:
            table.add_row(name, "[red]error[/]", *[""] * len(labels), r["error"])
            continue
        cells = [f"{r['probabilities'][label]:.2f}" for label in labels]
        table.add_row(name, r["label"], *cells, str(len(r["windows"])))
    console.print(table)
