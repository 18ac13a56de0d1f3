"""The Python API (ser/api.py): light to import, README's snippets run as written, a user's own Trainer and
network, checkpoints that `ser predict` reads, a sweep's leaderboard as a DataFrame."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def readme_python_blocks() -> list[str]:
    """The fenced ```python blocks of README's "Python API" section, in order."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## Python API", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def test_import_ser_and_loading_a_config_import_no_torch() -> None:
    code = (
        "import sys, ser\n"
        "cfg = ser.load_config('ravdess_cnn', {'model.depth': 3}, overrides=['optim.lr=0.01'])\n"
        "assert cfg.model.depth == 3 and cfg.optim.lr == 0.01, cfg.model.depth\n"
        "assert callable(ser.fit) and callable(ser.build_model) and callable(ser.datamodule)\n"
        "import ser.sweep.spec\n"  # binds the subpackage as ser.sweep: still the API call
        "assert callable(ser.sweep)\n"
        "heavy = [m for m in ('torch', 'lightning', 'ray', 'pandas') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_load_config_names_a_typo_in_a_mapping() -> None:
    import ser
    from ser.config import ConfigError

    with pytest.raises(ConfigError, match=r"model\.dpth"):
        ser.load_config({"model": {"dpth": 2}})
    with pytest.raises(ConfigError, match=r"data\.batch_size"):
        ser.load_config({"data.batch_size": 0})


def test_readme_has_the_api_snippets() -> None:
    blocks = readme_python_blocks()
    assert len(blocks) == 2
    assert "ser.build_model(cfg, dm, net=TinyNet)" in blocks[0] and "ser.sweep(" in blocks[1]


@pytest.mark.slow
def test_readme_python_api_block_runs(
    tiny_env, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """README's first block, as written, in a fresh folder: ser.fit, a fold's DataModule, a user's network
    trained by a user's Trainer."""
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(readme_python_blocks()[0], "README.md (Python API)", "exec"), namespace)
    result, model, dm = namespace["result"], namespace["model"], namespace["dm"]
    assert (
        result.run_dir / "metrics.json"
    ).is_file() and result.run_dir.resolve().parent == tmp_path / "runs"
    assert result.metrics["summary"]["test/uar"]["n"] == 1 and len(result.folds) == 1
    assert type(model.net).__name__ == "TinyNet"
    assert 0.0 <= model.test_results["uar"] <= 1.0
    # fold 1's speakers, none shared between splits
    splits = dm.split_speakers()
    assert dm.fold_index == 1 and not set(splits["train"]) & set(splits["test"])
    printed = capsys.readouterr().out
    assert str(result.run_dir) in printed


@pytest.mark.slow
def test_own_trainer_saves_a_checkpoint_ser_predict_reads(
    tiny_cfg_factory, wav_writer, tmp_path: Path
) -> None:
    import lightning as L
    import torch

    import ser
    from ser.inference.predict import predict_paths

    cfg = tiny_cfg_factory("trainer.max_epochs=1")
    dm = ser.datamodule(cfg, fold=0)
    model = ser.build_model(cfg, dm)
    trainer = L.Trainer(max_epochs=1, default_root_dir=str(tmp_path), enable_progress_bar=False, logger=False)
    trainer.fit(model, dm)
    ckpt = Path(trainer.checkpoint_callback.best_model_path)
    assert ckpt.is_file()
    # ser's own fold trainer draws the same initial weights for that fold (the fold's seed)
    again = ser.build_model(cfg, dm)
    first = next(iter(ser.build_model(cfg, dm).net.parameters()))
    assert torch.equal(first, next(iter(again.net.parameters())))
    [item] = predict_paths(ckpt, [wav_writer(tmp_path / "clip.wav", seconds=1.0, kind="tone")])
    assert "error" not in item and item["label"] in cfg.data.synthetic.labels


def test_a_network_factory_must_return_a_module(tiny_cfg_factory) -> None:
    import ser

    cfg = tiny_cfg_factory()
    dm = ser.datamodule(cfg)
    with pytest.raises(TypeError, match="not a torch.nn.Module"):
        ser.build_model(cfg, dm, net=lambda shape, n: "a string")


@pytest.mark.slow
def test_readme_sweep_block_returns_the_leaderboard(
    tiny_env, ray_session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(readme_python_blocks()[1], "README.md (Python API, sweep)", "exec"), namespace)
    board = namespace["board"]
    assert list(board["rank"]) == [1, 2] and set(board["status"]) == {"completed"}
    assert sorted(board["optim.lr"]) == [0.001, 0.01]
    assert board["val/uar (best)"].is_monotonic_decreasing  # ranked on validation, best first
    assert board.attrs["dir"] == tmp_path / "sweep_results" / "lr"
    assert (board.attrs["dir"] / "best_config.yaml").is_file()
    # every trial logged its epochs to TensorBoard too (fixed: trainer.tensorboard)
    from tests.helpers.tensorboard_files import scalars

    boards = sorted(board.attrs["dir"].rglob("fold_0/tensorboard"))
    assert len(boards) == 2, boards
    assert all(len(scalars(folder)["val/uar"]) == 2 for folder in boards)
