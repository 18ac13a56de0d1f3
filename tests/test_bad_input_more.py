"""The bad inputs an outside tester still got through (issue 21, section 3): each is one `ser: error: ...`
line naming the file or key with exit code 2, or a reported skip; never a traceback, a hang or a NaN."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_bad_input import one_clear_line, run

ROOT = Path(__file__).resolve().parents[1]


def refused(argv: list[str], capsys: pytest.CaptureFixture, *needles: str) -> str:
    """`ser ARGV` exits 2 with one clear line holding every needle (argparse's usage errors included)."""
    try:
        code, err = run(argv, capsys)
    except SystemExit as exc:
        code, err = exc.code, capsys.readouterr().err
    assert code == 2, err
    one_clear_line(err, *needles)
    return err


def cli(*argv: str, env: dict | None = None, timeout: float = 120, stdin: bytes | None = None):
    """`python -m ser ARGV` in a subprocess: the real argv, the real error mapping, no test-process state."""
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "ser", *argv],
        capture_output=True,
        timeout=timeout,
        env=full_env,
        cwd=ROOT,
        input=stdin,
    )


# ------------------------------------------------------------------------------------- config values
def test_an_override_longer_than_a_file_name_is_not_a_crash(capsys) -> None:
    long = "data.root=" + "a" * 300  # Path(...).exists() raised "File name too long" for every command
    refused(["fit", long, "data.corpus=folder"], capsys, "folder", "cannot be read")
    from ser.cli.args import is_override

    assert is_override(long) and is_override("data.root=" + "b" * 5000)


@pytest.mark.parametrize(
    ("overrides", "needles"),
    [
        (["data.labels=[]"], ["data.labels", "empty"]),
        (["data.labels=[happy,sad,happy]"], ["data.labels", "happy", "more than once"]),
        (["data.labels={a: 1}"], ["data.labels", "must be a list"]),
        (["data.root=${nonexistent.key}"], ["data.root", "nonexistent.key"]),
        (["model.depth=100000000000000000000000"], ["model.depth", "<= 64"]),
        (["model.channels=1000000"], ["model.channels", "<= 8192"]),
        (["model.lstm_hidden=100000000"], ["model.lstm_hidden"]),
        (["data.batch_size=1000000000"], ["data.batch_size"]),
        (["data.holdout.fraction=1.0"], ["data.holdout.fraction", "< 1"]),
        (["data.holdout.fraction=0.25", "data.holdout.speakers=[a]"], ["data.holdout.speakers", "not both"]),
        (["data.sampler=balanced", "data.class_weights=true"], ["data.sampler", "use one"]),
        (["trainer.run_name=../../x"], ["trainer.run_name", "../../x"]),
        (["trainer.run_name=a/b"], ["trainer.run_name"]),
        (["trainer.run_name=.."], ["trainer.run_name"]),
    ],
)
def test_config_values_refused_at_load(overrides, needles, capsys) -> None:
    refused(["fit", "--print-config", *overrides], capsys, *needles)


def test_a_yaml_file_of_the_wrong_shape_names_the_key_and_file(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("data:\n  labels: {a: 1}\nmodel:\n  depth: 3\n")
    refused(["fit", "--config", str(bad), "--print-config"], capsys, "data.labels", "bad.yaml")
    bad.write_text("trainer:\n  output_dir: ${nope.nothing}\n")
    refused(["fit", "--config", str(bad), "--print-config"], capsys, "trainer.output_dir", "nope.nothing")


def test_a_sweep_space_that_is_a_list(tmp_path: Path, capsys) -> None:
    from ser.config import ConfigError
    from ser.sweep.spec import load_sweep

    path = tmp_path / "s.yaml"
    path.write_text("name: s\nspace:\n  - model.depth\n")
    with pytest.raises(ConfigError, match=r"'space' in .*s\.yaml: must be a mapping, not a list"):
        load_sweep(path)


def test_absurd_sizes_in_a_sweep_space_fail_at_load(tmp_path: Path) -> None:
    from ser.config import ConfigError
    from ser.sweep.spec import load_sweep

    path = tmp_path / "s.yaml"
    path.write_text("name: s\nspace:\n  model.depth: {randint: [1, 100000000000000000000000]}\n")
    with pytest.raises(ConfigError, match="model.depth"):
        load_sweep(path)


def test_output_dir_that_is_a_file(tiny_env, tmp_path: Path, capsys) -> None:
    blocker = tmp_path / "runs"
    blocker.write_text("not a folder")
    refused(["fit", f"trainer.output_dir={blocker}"], capsys, "trainer.output_dir", str(blocker), "file")
    refused(["fit", f"trainer.output_dir={blocker}/sub"], capsys, "trainer.output_dir", "is a file")


# ----------------------------------------------------------------------------- predict, live, serve
@pytest.fixture
def clip(tmp_path: Path, wav_writer) -> Path:
    return wav_writer(tmp_path / "clip.wav", seconds=1.0)


def damaged_checkpoint(tiny_run, tmp_path: Path, change) -> Path:
    import torch

    raw = torch.load(tiny_run.folds[0].checkpoint, weights_only=True)
    change(raw)
    path = tmp_path / "damaged.ckpt"
    torch.save(raw, path)
    return path


def first_weight(raw: dict) -> str:
    return next(k for k, v in raw["state_dict"].items() if k.endswith("weight") and v.dim() > 1)


def test_serve_port_out_of_range(tiny_run, capsys) -> None:
    refused(["serve", str(tiny_run.folds[0].checkpoint), "--port", "99999"], capsys, "port", "65535")


@pytest.mark.parametrize(("flag", "value"), [("--window", "inf"), ("--window", "nan"), ("--hop", "inf")])
def test_predict_window_and_hop_must_be_finite(tiny_run, clip, capsys, flag, value) -> None:
    refused(["predict", str(tiny_run.folds[0].checkpoint), str(clip), flag, value], capsys, flag, "finite")


def test_predict_bounds_the_number_of_windows(tiny_run, tmp_path: Path, wav_writer, capsys) -> None:
    long = wav_writer(tmp_path / "long.wav", seconds=30.0)  # --hop 0.0001: 300,000 windows used to hang
    err = refused(["predict", str(tiny_run.folds[0].checkpoint), str(long), "--hop", "0.0001"], capsys)
    one_clear_line(err, "windows", "--hop", "30.0 s")


def test_predict_refuses_nan_weights(tiny_run, tmp_path: Path, clip, capsys) -> None:
    def poison(raw):
        raw["state_dict"][first_weight(raw)][0].fill_(float("nan"))

    bad = damaged_checkpoint(tiny_run, tmp_path, poison)
    refused(["predict", str(bad), str(clip)], capsys, "damaged.ckpt", "NaN or inf")


def test_predict_refuses_non_finite_probabilities(tiny_run, tmp_path: Path, clip, capsys) -> None:
    def overflow(raw):  # finite weights whose products overflow float32: inf logits, NaN probabilities
        for key, value in raw["state_dict"].items():
            if key.endswith("weight") and value.is_floating_point():
                value.fill_(3e38)

    bad = damaged_checkpoint(tiny_run, tmp_path, overflow)
    refused(["predict", str(bad), str(clip)], capsys, "damaged.ckpt", "non-finite probabilities")


def test_a_checkpoint_naming_a_label_twice(tiny_run, tmp_path: Path, clip, capsys) -> None:
    def twice(raw):
        labels = raw["ser"]["labels"]
        labels[1] = labels[0]

    bad = damaged_checkpoint(tiny_run, tmp_path, twice)
    refused(["predict", str(bad), str(clip)], capsys, "damaged.ckpt", "more than once")


def test_live_rate_zero_is_refused(tiny_run, capsys) -> None:
    refused(["live", str(tiny_run.folds[0].checkpoint), "--stdin", "--rate", "0"], capsys, "--rate", "1000")


def test_live_stdin_of_random_float_bytes(tiny_run, monkeypatch, capsys) -> None:
    import io

    noise = np.random.default_rng(0).integers(0, 256, 64000, dtype=np.uint8).tobytes()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(noise)))
    code, err = run(["live", str(tiny_run.folds[0].checkpoint), "--stdin", "--json"], capsys)
    assert code == 2, err
    one_clear_line(err, "stdin holds", "float32")
    assert "NaN" not in capsys.readouterr().out


def test_live_refuses_non_finite_output(tiny_run, tmp_path: Path, wav_writer, capsys) -> None:
    def overflow(raw):
        for key, value in raw["state_dict"].items():
            if key.endswith("weight") and value.is_floating_point():
                value.fill_(3e38)

    bad = damaged_checkpoint(tiny_run, tmp_path, overflow)
    clip = wav_writer(tmp_path / "c.wav", seconds=2.0)
    code, err = run(["live", str(bad), "--file", str(clip), "--json"], capsys)
    assert code == 2
    one_clear_line(err, "non-finite probabilities")


# ----------------------------------------------------------------------------------------- report
def test_report_of_a_damaged_predictions_file(tiny_run, tmp_path: Path, capsys) -> None:
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(tiny_run.run_dir, copy)
    target = next(copy.glob("*/predictions.npz"))
    target.write_bytes(target.read_bytes()[:100])  # truncated
    refused(["report", str(copy)], capsys, str(target), "damaged")
    from ser.report.predictions import read_predictions, write_predictions

    good = read_predictions(next(tiny_run.run_dir.glob("*/predictions.npz")))
    good.y[0] = 99  # a class index the labels do not have
    write_predictions(target, good)
    refused(["report", str(copy)], capsys, str(target), "class indices")
