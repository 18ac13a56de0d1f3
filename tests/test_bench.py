"""The benchmark scripts still run end to end on a tiny synthetic corpus and print positive ratios.

They are scripts, not a package: they are loaded from bench/ by path, with bench/ on sys.path for their
shared `_common` module (as `python bench/x.py` would have it).
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
TINY = [
    "--synthetic-speakers=4",
    "--synthetic-per-label=2",
    "--synthetic-labels=4",
    "--synthetic-duration=1.0",
    "--set=data.audio.duration=1.0",
    "--set=data.folds=4",
]
RATIO = re.compile(r"(\w+)=([0-9.eE+-]+)x")


@pytest.fixture(scope="module")
def scripts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, ModuleType]]:
    """The two scripts as modules, with one SER_CACHE for this file so the tiny corpus is made once."""
    cache = tmp_path_factory.mktemp("bench_cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SER_CACHE", str(cache))
        mp.syspath_prepend(str(BENCH))
        modules = {}
        for name in ("pipeline", "features", "ssl_encoders"):
            spec = importlib.util.spec_from_file_location(f"ser_bench_{name}", BENCH / f"{name}.py")
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            mp.setitem(sys.modules, spec.name, module)  # dataclasses look their module up there
            spec.loader.exec_module(module)
            modules[name] = module
        yield modules


def ratios_from(output: str) -> dict[str, float]:
    lines = [line for line in output.splitlines() if line.startswith("RATIOS ")]
    assert len(lines) == 1, f"expected one RATIOS line in:\n{output}"
    return {key: float(value) for key, value in RATIO.findall(lines[0])}


def test_pipeline_prints_positive_ratios(
    scripts: dict[str, ModuleType], capsys: pytest.CaptureFixture[str]
) -> None:
    pipeline = scripts["pipeline"]
    small_model = ["--set=model.depth=2", "--set=model.channels=8", "--set=model.hidden=16"]
    returned = pipeline.main([*TINY, *small_model, "--epochs=2", "--batch-size=8", "--workers=0"])
    out = capsys.readouterr().out
    printed = ratios_from(out)
    assert set(printed) == {"data_side_speedup", "epoch_speedup", "cold_first_epoch_ratio"}
    assert all(value > 0 for value in printed.values()), printed
    assert printed == pytest.approx(returned, rel=0.01, abs=0.01)
    assert "baseline librosa DataLoader(num_workers=0)" in out and "ser cached features" in out
    # 4 speakers in 4 folds: 2 train speakers x 4 labels x 2 = 16 rows, batches of 8 -> 2 steps per epoch.
    assert "16 train rows" in out


def test_pipeline_needs_a_warm_epoch(scripts: dict[str, ModuleType]) -> None:
    pipeline = scripts["pipeline"]
    with pytest.raises(SystemExit):
        pipeline.parse_args(["--epochs=1"])


def test_features_prints_positive_ratios(
    scripts: dict[str, ModuleType], capsys: pytest.CaptureFixture[str]
) -> None:
    features = scripts["features"]
    variants = "--variants=decode,torch,librosa,handcrafted,egemaps"
    args = [*TINY, "--limit=8", "--repeats=1", "--in-process", variants]
    returned = features.main(args)
    out = capsys.readouterr().out
    printed = ratios_from(out)
    expected = {
        "cached_speedup",
        "torch_vs_librosa_speedup",
        "torch_vs_librosa_cold_total",
        "handcrafted_cached_speedup",
        "egemaps_cached_speedup",
    }
    assert set(printed) == expected
    assert all(value > 0 for value in printed.values()), printed
    assert set(returned) == expected
    assert "handcrafted 193-vector (librosa) [cached]" in out
    assert "eGeMAPS 88 functionals (openSMILE) [cold]" in out


def test_features_worker_reports_one_json_result(
    scripts: dict[str, ModuleType], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """What an isolated run's subprocess prints, parsed the way the parent parses it."""
    features = scripts["features"]
    features.main([*TINY, "--limit=6", "--worker=torch-cold", f"--worker-cache={tmp_path}"])
    lines = [x for x in capsys.readouterr().out.splitlines() if x.startswith(features.RESULT_PREFIX)]
    assert len(lines) == 1
    result = json.loads(lines[0][len(features.RESULT_PREFIX) :])
    assert result["job"] == "torch-cold" and result["rows"] == 6
    assert result["shape"] == [1, 64, 51]  # 1 s at 16 kHz, hop 320 -> 51 frames
    assert result["seconds"] > 0 and result["compute"] > 0 and result["peak_rss_mb"] > 0
    assert any((tmp_path / "features").iterdir()), "the cold job should have written its cache entry"


def test_features_rejects_unknown_variant(scripts: dict[str, ModuleType]) -> None:
    features = scripts["features"]
    with pytest.raises(SystemExit):
        features.parse_args(["--variants=torch,gpu"])


@pytest.mark.slow
def test_ssl_encoders_prints_positive_ratios(
    scripts: dict[str, ModuleType], capsys: pytest.CaptureFixture[str]
) -> None:
    returned = scripts["ssl_encoders"].main([*TINY, "--no-base", "--epochs=2", "--repeats=1"])
    ratios = ratios_from(capsys.readouterr().out)
    assert set(ratios) == set(returned) and all(v > 0 for v in ratios.values())
    assert ratios["fp16_vs_fp32_bytes"] == pytest.approx(0.5, abs=0.01)
    assert ratios["tiny_cached_vs_cold"] > 1.0  # reading cached states beats running the encoder
