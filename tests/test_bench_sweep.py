"""The sweep benchmarks (bench/sweep.py, bench/trials.py) still run end to end on tiny settings, and their
helpers (grid, ranking with ties, the RATIOS line, the process memory sampler) do what they claim.

The scripts are loaded from bench/ by path, with bench/ on sys.path for `_common` and `_sweep_common`
(as `python bench/x.py` would have it). One Ray session serves the whole file.
"""

from __future__ import annotations

import importlib.util
import math
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
TINY = [
    "--synthetic-speakers=4",
    "--synthetic-per-label=2",
    "--set=data.synthetic.labels=[neutral,happy,sad,angry]",
    "--set=data.synthetic.duration=1.0",
    "--set=data.audio.duration=1.0",
    "--set=data.folds=4",
    "--set=model.channels=8",
]
RATIO = re.compile(r"(\w+)=([0-9.eE+-]+|nan|inf)x?(?=\s|$)")


@pytest.fixture(scope="module")
def scripts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, ModuleType]]:
    """The scripts and their shared module, with one SER_CACHE for this file."""
    cache = tmp_path_factory.mktemp("bench_sweep_cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SER_CACHE", str(cache))
        mp.setenv("WANDB_MODE", "offline")
        mp.syspath_prepend(str(BENCH))
        modules = {}
        for name in ("_sweep_common", "sweep", "trials"):
            spec = importlib.util.spec_from_file_location(f"ser_bench_{name}", BENCH / f"{name}.py")
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            mp.setitem(sys.modules, spec.name, module)  # dataclasses look their module up there
            spec.loader.exec_module(module)
            modules[name] = module
        yield modules


@pytest.fixture(scope="module")
def ray_session(scripts: dict[str, ModuleType]) -> Iterator[None]:
    """Ray started once for both end-to-end tests (the scripts leave a running session alone)."""
    was_running = scripts["_sweep_common"].start_ray()
    yield
    scripts["_sweep_common"].shutdown_ray_if_started(was_running)


def ratios_from(output: str) -> dict[str, float]:
    lines = [line for line in output.splitlines() if line.startswith("RATIOS ")]
    assert len(lines) == 1, f"expected one RATIOS line in:\n{output}"
    return {key: float(value) for key, value in RATIO.findall(lines[0])}


# ------------------------------------------------------------------------------------------ helpers
def test_grid_is_depths_by_log_spaced_learning_rates(scripts: dict[str, ModuleType]) -> None:
    grid = scripts["sweep"].grid
    assert grid(16) == {"model.depth": [1, 2, 3, 4], "optim.lr": [3e-4, 1e-3, 3e-3, 1e-2]}
    assert grid(4) == {"model.depth": [1, 2], "optim.lr": [3e-4, 1e-2]}
    for n in (2, 6, 9, 12, 25):
        g = grid(n)
        assert len(g["model.depth"]) * len(g["optim.lr"]) == n


def test_rank_counts_only_strictly_better_configs(scripts: dict[str, ModuleType]) -> None:
    rank_in = scripts["sweep"].rank_in
    rows = [
        {"model.depth": 1, "optim.lr": 0.1, "best": 0.9},
        {"model.depth": 2, "optim.lr": 0.1, "best": 0.7},
        {"model.depth": 3, "optim.lr": 0.1, "best": 0.7},
        {"model.depth": 4, "optim.lr": 0.1, "best": 0.5},
    ]
    assert [rank_in(rows, (d, 0.1)) for d in (1, 2, 3, 4)] == [1, 2, 2, 4]


def test_asha_replay_follows_rays_rung_rule_and_depends_on_order(scripts: dict[str, ModuleType]) -> None:
    sweep = scripts["sweep"]
    # the rungs ser's scheduler uses (before the last epoch), the same list as the rung plot's
    from ser.sweep.schedulers import asha_milestones

    assert sweep.asha_rungs(1, 3.0, 9) == [1, 3] and sweep.asha_rungs(2, 2.0, 8) == [2, 4]
    assert sweep.asha_rungs(1, 3.0, 27) == asha_milestones(1, 3.0, 27) == [1, 3, 9]
    curves = [[0.1, 0.1, 0.1], [0.5, 0.5, 0.5], [0.2, 0.2, 0.2]]
    # the first trial at a rung always goes on; later ones stop below the median of those before them
    assert sweep.replay_asha(curves, [0, 1, 2], [1], 2.0) == 3 + 3 + 1
    assert sweep.replay_asha(curves, [1, 0, 2], [1], 2.0) == 3 + 1 + 1


def test_ratios_line_marks_ratios_not_ranks_or_seconds(scripts: dict[str, ModuleType]) -> None:
    line = scripts["_sweep_common"].ratios_line(
        {"frac": (0.2912, "x"), "rank": (2.0, "rank"), "overhead_s": (4.126, "s"), "tiny": (0.0042, "x")}
    )
    assert line == "RATIOS frac=0.29x rank=2 overhead_s=4.13 tiny=0.0042x"
    assert ratios_from(line) == {"frac": 0.29, "rank": 2.0, "overhead_s": 4.13, "tiny": 0.0042}


def test_memory_sampler_sees_a_child_process_private_memory(scripts: dict[str, ModuleType]) -> None:
    common = scripts["_sweep_common"]
    code = "import time; b = bytes(range(256)) * 2**18; print('ready', flush=True); time.sleep(30)"  # 64 MB
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        sampler = common.MemorySampler(interval=0.05)
        sampler.sample()
        record = sampler.records[child.pid]
        assert record.peak_uss >= 64 * 1024  # KiB: the bytearray is private to the child
        assert sampler.peak_total_pss >= record.peak_pss >= 64 * 1024
        assert not record.is_trial and sampler.trial_records() == []
    finally:
        child.kill()
        child.wait()


# ------------------------------------------------------------------------------------- end to end
@pytest.mark.slow
def test_sweep_bench_compares_asha_with_fifo(
    scripts: dict[str, ModuleType], ray_session: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sweep = scripts["sweep"]
    argv = [*TINY, "--configs=3", "--max-t=2", "--concurrency=2", f"--out={tmp_path}"]
    returned = sweep.main(argv)
    out = capsys.readouterr().out
    printed = ratios_from(out)
    assert set(printed) == {
        "asha_epoch_fraction",
        "asha_wall_fraction",
        "asha_best_rank_in_fifo",
        "asha_best_vs_fifo_best",
        "replay_random_order_epoch_fraction",
    }
    assert all(value > 0 for value in printed.values()), printed
    assert printed == pytest.approx(returned, rel=0.01, abs=0.01)
    assert returned["asha_epoch_fraction"] <= 1.0  # ASHA never trains more than FIFO's full budget
    assert 1 <= returned["asha_best_rank_in_fifo"] <= 3
    # same seeds: every config's per-epoch val/uar in ASHA equals FIFO's first epochs
    assert "identical in both runs (up to ASHA's stop): 3/3 configs" in out
    boards = sorted(p.parent.name for p in tmp_path.glob("run-*/bench_*/leaderboard.csv"))
    assert boards == ["bench_asha", "bench_fifo"]


@pytest.mark.slow
def test_trials_bench_reports_overhead_and_memory(
    scripts: dict[str, ModuleType], ray_session: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trials = scripts["trials"]
    returned = trials.main([*TINY, "--concurrency=1,2", "--epochs=2", "--no-copy-check", f"--out={tmp_path}"])
    out = capsys.readouterr().out
    printed = ratios_from(out)
    assert set(printed) == {
        "overhead_per_trial_s",
        "overhead_fraction_of_trial",
        "mem_growth_per_extra_trial_vs_data",
        "peak_mem_2_vs_1_trials",
        "shm_mapped_vs_data",
    }
    assert all(value > 0 and math.isfinite(value) for value in printed.values()), printed
    assert printed == pytest.approx(returned, rel=0.01, abs=0.01)
    assert returned["overhead_fraction_of_trial"] <= 1.0
    assert returned["peak_mem_2_vs_1_trials"] > 1.0  # a second worker process costs memory
    # every trial of both levels was matched to the worker process the sampler watched
    assert re.search(r"^1 at once .* 1/1 ", out, re.MULTILINE) and re.search(r"^2 at once .* 2/2 ", out, re.M)
