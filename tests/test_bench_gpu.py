"""The one-command GPU benchmark (bench/gpu.sh -> bench/gpu.py) runs end to end in its dry mode on CPU,
so it is known to work the day a GPU is lent; bench/fused.py runs inside it."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"


def _gpu_module():
    spec = importlib.util.spec_from_file_location("ser_bench_gpu", BENCH / "gpu.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_markdown_table_reports_every_section_and_what_was_skipped() -> None:
    gpu = _gpu_module()
    report = {
        "started": "2026-01-01T00:00:00",
        "device_name": "Test GPU",
        "dry_run": False,
        "utilisation": {
            "fused": {"util_mean": 91.0, "util_max": 99.0, "memory_max_mb": 2048.0, "samples": 9}
        },
        "sections": {
            "pipeline": {"cached_epoch_s": 0.05, "per_item_epoch_s": 1.5, "epoch_speedup": 30.0},
            "fused": {
                "fused_fold_epochs_per_s": 12.0,
                "threads_fold_epochs_per_s": 2.0,
                "sequential_fold_epochs_per_s": 1.5,
                "fused_vs_threads": 6.0,
                "fused_vs_sequential": 8.0,
                "max_val_uar_gap": 0.0,
            },
            "packing": {"levels": {"1": {"trial_epochs_per_s": 1.0, "vs_one_trial": 1.0}}},
            "quickstart": {"seconds": 61.0, "trials": {"completed": 8}},
            "cnn_depth": {"skipped": "no dev RAVDESS path given"},
        },
    }
    table = gpu.markdown(report)
    assert "Test GPU" in table and "**30.0x**" in table and "**6.00x**" in table
    assert "91% mean, 99% peak, 2048 MB" in table and "no dev RAVDESS path given" in table
    assert all(line.startswith("|") for line in table.splitlines()[2:])


@pytest.mark.slow
def test_gpu_benchmark_dry_run_writes_its_json_and_table(tmp_path: Path) -> None:
    """`bash bench/gpu.sh --dry-run`: every section runs tiny on CPU and lands in gpu.json / gpu.md, the
    fused folds' validation curves equal the separate ones, cnn_depth is skipped with the reason."""
    env = {
        **os.environ,
        "SER_CACHE": str(tmp_path / "cache"),
        "WANDB_MODE": "offline",
        "PYTHON": sys.executable,
    }
    out = tmp_path / "gpu"
    done = subprocess.run(
        ["bash", str(BENCH / "gpu.sh"), "--dry-run", f"--out={out}", "--budget-min=20"],
        env=env,
        capture_output=True,
        text=True,
        timeout=1500,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads((out / "gpu.json").read_text())
    sections = report["sections"]
    for name in ("pipeline", "fused", "packing", "quickstart"):
        assert "error" not in sections[name], (name, sections[name])
    assert sections["pipeline"]["epoch_speedup"] > 0
    assert sections["fused"]["max_val_uar_gap"] == 0.0 and sections["fused"]["fused_vs_threads"] > 0
    assert {"1", "2"} <= set(sections["packing"]["levels"])
    assert all(level["trial_epochs"] >= 1 for level in sections["packing"]["levels"].values())
    assert sections["quickstart"]["finished"] and sections["quickstart"]["trials"]
    assert "skipped" in sections["cnn_depth"]
    table = (out / "gpu.md").read_text()
    assert "| measure | result | target |" in table and "dry run" in table
