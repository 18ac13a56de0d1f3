"""`trainer.tensorboard=true`: every fold's epochs also land in TensorBoard event files, read back here."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from tests.helpers.tensorboard_files import scalars


@pytest.mark.slow
def test_fit_logs_every_epoch_to_tensorboard_like_the_csv_log(tiny_cfg_factory, monkeypatch) -> None:
    import tensorboardX.event_file_writer as event_file_writer

    from ser.training.fit import fit_folds

    class Frozen:  # fit and test open their event files within one second, as a tiny fold does
        @staticmethod
        def time() -> float:
            return 1_700_000_000.0

    monkeypatch.setattr(event_file_writer, "time", Frozen)

    result = fit_folds(tiny_cfg_factory("trainer.run_name=tb", "trainer.tensorboard=true"))
    fold_dir = result.run_dir / "fold_0"
    logged = scalars(fold_dir / "tensorboard")
    assert {"train/loss", "val/uar", "val/loss", "test/uar"} <= set(logged)
    assert len(logged["val/uar"]) == 2  # one per epoch (trainer.max_epochs=2)
    # the same numbers as the CSV log, epoch by epoch
    with (fold_dir / "logs" / "metrics.csv").open() as handle:
        csv_uar = [float(r["val/uar"]) for r in csv.DictReader(handle) if r.get("val/uar")]
    assert [v for _, v in logged["val/uar"]] == pytest.approx(csv_uar)
    assert logged["test/uar"][0][1] == pytest.approx(result.folds[0].test["uar"])


def test_tensorboard_is_off_by_default_and_a_typo_is_named() -> None:
    from ser.config import ConfigError, load_config

    assert load_config().trainer.tensorboard is False
    with pytest.raises(ConfigError, match="tensorbord"):
        load_config(overrides=["trainer.tensorbord=true"])


def test_event_reader_refuses_a_truncated_file(tmp_path: Path) -> None:
    from tensorboardX import SummaryWriter

    from tests.helpers.tensorboard_files import read_events

    with SummaryWriter(str(tmp_path)) as writer:
        writer.add_scalar("x", 1.5, 3)
    [path] = tmp_path.glob("events.out.tfevents.*")
    assert scalars(tmp_path) == {"x": [(3, 1.5)]}
    path.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(ValueError, match="truncated"):
        read_events(path)


@pytest.mark.slow
def test_fused_folds_log_to_tensorboard_each_in_its_own_folder(tiny_cfg_factory, tmp_path: Path) -> None:
    from ser.data.prepared import prepare_data
    from ser.training.fused import train_folds_fused

    cfg = tiny_cfg_factory("trainer.tensorboard=true")
    results = train_folds_fused(cfg, prepare_data(cfg, progress=False), [0, 1], tmp_path, write_plots=False)
    for result in results:
        logged = scalars(tmp_path / f"fold_{result.fold}" / "tensorboard")
        assert [round(v, 6) for _, v in logged["val/uar"]] == [round(h["val/uar"], 6) for h in result.history]
        assert logged["test/uar"][0][1] == pytest.approx(result.test["uar"])
