"""What a sweep reports when things go wrong around it: a full disk while results are written, Ray that
cannot start. (The resumed sweep's console and W&B output are checked in test_sweep.py's resume test.)"""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest

from ser.data.paths import write_atomic


def _full_disk_at(target: Path) -> Path:
    """The writer's temporary file for `target`, pointed at /dev/full: every write to it is a real ENOSPC."""
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp.symlink_to("/dev/full")
    return tmp


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_a_full_disk_never_leaves_half_a_results_file(tmp_path: Path, capsys) -> None:
    from ser.training.result import read_metrics, write_metrics

    target = tmp_path / "metrics.json"
    write_metrics(target, {"status": "completed", "summary": {"test/uar": {"mean": 0.5}}})
    before = target.read_bytes()
    tmp = _full_disk_at(target)
    with pytest.raises(OSError) as info:
        write_metrics(target, {"status": "completed", "folds": [{"history": list(range(50_000))}]})
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(target)
    assert "No space left on device" in str(info.value)
    assert target.read_bytes() == before and read_metrics(target)["status"] == "completed"
    assert not tmp.exists() and not tmp.is_symlink(), "the temporary file was left behind"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]
    # ... and the command says so in one line naming the file it was writing
    from ser.cli.errors import run_reporting_errors

    _full_disk_at(target)
    assert run_reporting_errors(lambda: write_metrics(target, {"status": "completed"}), prog="ser sweep") == 2
    err = capsys.readouterr().err
    assert err == f"ser sweep: error: no space left on device writing {target}\n", err


def test_results_files_are_written_whole(tmp_path: Path) -> None:
    from ser.sweep.results import write_leaderboard

    row = {
        "trial_id": "a",
        "status": "completed",
        "best": 0.5,
        "last": 0.4,
        "best_epoch": 2,
        "epochs": 3,
        "wall_seconds": 1.0,
        "error": "",
        "optim.lr": 0.01,
    }
    path = write_leaderboard([row], ["optim.lr"], "val/uar", tmp_path / "leaderboard.csv")
    assert path.read_text().splitlines()[1].startswith("1,a,completed,0.5000,0.4000,2,3,1.0,0.01")
    write_atomic(tmp_path / "sweep.json", json.dumps({"x": 1}))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["leaderboard.csv", "sweep.json"]


def test_ray_that_cannot_start_is_one_line(tiny_env, tmp_path: Path, monkeypatch, capsys) -> None:
    """A busy machine times Ray's node out during startup: one line saying so and what to try."""
    import ray
    import yaml

    from ser.cli.sweep import main

    def timed_out(*args, **kwargs):  # what ray._private.node raises on a loaded machine
        raise Exception(
            "The current node timed out during startup. This could happen because some of the raylet "
            "failed to startup or the GCS has become overloaded."
        )

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", timed_out)
    sweep = tmp_path / "s.yaml"
    body = {"name": "s", "space": {"optim.lr": {"choice": [0.01]}}, "storage_path": str(tmp_path / "out")}
    tiny = {"data.synthetic.speakers": 4, "data.synthetic.per_label": 2, "data.audio.duration": 0.5}
    sweep.write_text(yaml.safe_dump({**body, "fixed": {**tiny, "data.synthetic.duration": 0.5}}))
    assert main([str(sweep), "--no-wandb"]) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("ser sweep: error: ")]
    assert len(lines) == 1 and "Traceback" not in err and "features" not in err, err  # before the features
    assert lines[0].startswith("ser sweep: error: Ray could not start (The current node timed out")
    assert "ray start --head" in err and "--address auto" in err
