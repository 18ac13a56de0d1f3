"""Shared fixtures: tiny audio files of known content written into tmp_path."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import pytest
import soundfile as sf

# Tests never download: transformers and huggingface_hub read these when they are first imported.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The slow tests (the Ray sweeps, the benchmarks' dry runs) first, otherwise in file order: the suite
    runs on 2 workers (pytest-xdist, pyproject's addopts), and a 3-minute sweep collected last would run
    alone at the end while the other worker sits idle."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


def write_wav(
    path: str | Path,
    seconds: float = 0.3,
    sample_rate: int = 16000,
    channels: int = 1,
    kind: str = "noise",
    amplitude: float = 0.3,
    subtype: Optional[str] = None,
    format: Optional[str] = None,
    seed: int = 0,
) -> Path:
    """Write `kind` ("noise" | "tone" | "silence") audio; `format`/`subtype` as soundfile takes them."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n = int(round(seconds * sample_rate))
    if kind == "noise":
        wave = np.random.default_rng(seed).uniform(-1.0, 1.0, (n, channels))
    elif kind == "tone":
        t = np.arange(n) / sample_rate
        wave = np.stack([np.sin(2 * np.pi * 440.0 * (c + 1) * t) for c in range(channels)], axis=1)
    elif kind == "silence":
        wave = np.zeros((n, channels))
    else:
        raise ValueError(f"unknown kind {kind!r}")
    data = (amplitude * wave).astype(np.float32)
    sf.write(str(path), data if channels > 1 else data[:, 0], sample_rate, subtype=subtype, format=format)
    return path


@pytest.fixture
def wav_writer() -> Callable[..., Path]:
    """`write_wav` as a fixture, for tests that build tiny corpora in tmp_path."""
    return write_wav


TINY_OVERRIDES = [
    "data.synthetic.speakers=4",
    "data.synthetic.per_label=4",
    "data.synthetic.labels=[neutral,happy,sad,angry]",
    "data.synthetic.duration=1.0",
    "data.audio.duration=1.0",
    "data.folds=4",
    "data.batch_size=16",
    "model.depth=2",
    "model.channels=8",
    "model.hidden=32",
    "trainer.max_epochs=2",
    "trainer.progress_bar=false",
]


@pytest.fixture(scope="session")
def tiny_overrides() -> list[str]:
    return list(TINY_OVERRIDES)


@pytest.fixture(scope="session")
def ray_session():
    """One Ray session for every sweep test, shut down when the run ends: each `ray.init` costs seconds
    on 2 cores, and a sweep joins a running session (ser.sweep.run.start_ray), as from a shell with
    `--address auto`. A test that must see Ray absent patches `ray.is_initialized`."""
    import ray

    yield
    if ray.is_initialized():
        ray.shutdown()


@pytest.fixture(scope="session")
def tiny_env(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A session cache dir so the tiny synthetic corpus and its features are made once per test run."""
    cache = tmp_path_factory.mktemp("ser_cache")
    os.environ["SER_CACHE"] = str(cache)
    os.environ.setdefault("WANDB_MODE", "offline")
    os.environ.setdefault("WANDB_SILENT", "true")
    return cache


@pytest.fixture(scope="session")
def tiny_cfg_factory(tiny_env: Path, tmp_path_factory: pytest.TempPathFactory) -> Callable[..., object]:
    """Config of a tiny synthetic run (4 speakers x 4 labels, 1 s clips, small CNN); extra overrides last."""
    from ser.config import load_config

    out = tmp_path_factory.mktemp("runs")

    def make(*overrides: str):
        return load_config(overrides=[*TINY_OVERRIDES, f"trainer.output_dir={out}", *overrides])

    return make


@pytest.fixture(scope="session")
def tiny_run(tiny_cfg_factory: Callable[..., object]) -> dict:
    """One trained fold of the tiny config: its run directory, metrics and best checkpoint."""
    from ser.training.fit import fit_folds

    return fit_folds(tiny_cfg_factory("trainer.run_name=tiny"))


# ------------------------------------------------------------------------------ writes into the repo
REPO = Path(__file__).resolve().parent.parent
OUTPUT_FOLDERS = ("runs", "sweep_results", "wandb", "lightning_logs")  # where defaults write, relative to cwd
IGNORED = {".pytest_cache", "__pycache__", ".ruff_cache", ".coverage", ".hypothesis"}


def _snapshot(roots: set[Path]) -> set[Path]:
    """The entries of each root and of the default output folders in it: cheap enough for every test."""
    seen = set()
    for root in roots:
        for entry in root.iterdir() if root.is_dir() else ():
            if entry.name not in IGNORED:
                seen.add(entry)
        for name in OUTPUT_FOLDERS:
            folder = root / name
            if folder.is_dir():
                seen.update(folder.iterdir())
    return seen


@pytest.fixture(autouse=True)
def _no_writes_into_the_repo():
    """Tests write only under tmp_path: one that leaves a file in the repository (or the folder pytest
    runs in), e.g. `runs/<date>-emotion_detector/config.yaml` from a default `trainer.output_dir`, fails."""
    roots = {REPO, Path.cwd()}
    before = _snapshot(roots)
    yield
    new = sorted(str(p) for p in _snapshot(roots) - before)
    if new:
        pytest.fail(f"the test wrote into the repository (write under tmp_path instead): {new[:5]}")
