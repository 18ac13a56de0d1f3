"""Bad input an outside tester tried: each gets one clear line naming the problem and exit code 2 (or is
skipped and reported), never a traceback, a hang, or anything silently dropped or relabelled."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from ser.cli import main
from ser.cli.args import is_override, split_overrides


def run(argv: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str]:
    code = main(argv)
    err = capsys.readouterr().err
    return code, err


def one_clear_line(err: str, *needles: str) -> None:
    assert "Traceback" not in err, err
    lines = [line for line in err.strip().splitlines() if line.startswith("ser")]
    assert lines and all(n in " ".join(err.split()) for n in needles), err


def test_paths_with_equals_signs_are_paths(tmp_path: Path, monkeypatch) -> None:
    trial = tmp_path / "run_trial_1_optim_lr=0.0100_2026" / "fold_0"
    trial.mkdir(parents=True)
    ckpt = trial / "best.ckpt"
    ckpt.write_bytes(b"x")
    overrides, rest = split_overrides(["evaluate", str(ckpt), "data.fold=1", "data.root=/a=b"])
    assert rest == ["evaluate", str(ckpt)] and overrides == ["data.fold=1", "data.root=/a=b"]
    monkeypatch.chdir(tmp_path)
    relative = "run_trial_1_optim_lr=0.0100_2026/fold_0/best.ckpt"
    assert not is_override(relative)
    (tmp_path / "a=b.wav").write_bytes(b"")
    assert not is_override("a=b.wav")  # an existing file in the working folder


def test_evaluating_a_trial_checkpoint_by_its_path(tiny_run, tmp_path: Path, capsys) -> None:
    trial = tmp_path / "run_trial_x_optim_lr=0.0100_2026-12-01" / "fold_0"
    trial.mkdir(parents=True)
    shutil.copy(tiny_run.folds[0].checkpoint, trial / "best.ckpt")
    code, err = run(["evaluate", str(trial / "best.ckpt"), "--out", str(tmp_path / "e")], capsys)
    assert code == 0, err


@pytest.mark.parametrize(
    ("argv", "needles"),
    [
        (["data", "inspect", "--corpus", "ravdes"], ["invalid choice", "ravdess"]),
        (["fit", "trainer.accelerator=gpu"], ["trainer.accelerator", "no CUDA GPU"]),
        (["fit", "trainer.precision=bogus"], ["trainer.precision"]),
        (["fit", "data.batch_size=0"], ["data.batch_size"]),
        (["fit", "trainer.max_epochs=0"], ["trainer.max_epochs"]),
        (["fit", "--config", "ravdes"], ["did you mean 'ravdess'"]),
    ],
)
def test_cli_refuses_with_one_line(tiny_env, argv, needles, capsys, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # the default trainer.output_dir is ./runs
    if "cuda" in " ".join(needles).lower() and torch.cuda.is_available():
        pytest.skip("a GPU is visible here")
    try:
        code, err = run(argv, capsys)
    except SystemExit as exc:  # argparse's own usage errors
        code, err = exc.code, capsys.readouterr().err
    assert code == 2
    one_clear_line(err, *needles)


def test_serve_refuses_a_zero_upload_limit(tiny_run, capsys) -> None:
    with pytest.raises(SystemExit) as info:
        main(["serve", str(tiny_run.folds[0].checkpoint), "--max-upload-mb", "0"])
    assert info.value.code == 2 and "must be > 0" in capsys.readouterr().err


@pytest.mark.parametrize("kind", ["a file", "not writable"])
def test_an_unusable_cache_folder_is_one_line(tmp_path: Path, monkeypatch, capsys, kind: str) -> None:
    if kind == "a file":
        target = tmp_path / "cache"
        target.write_text("")
    else:
        if os.geteuid() == 0:
            target = Path("/proc/ser-cache")  # not creatable even by root
        else:
            target = tmp_path / "ro"
            target.mkdir()
            target.chmod(0o500)
    monkeypatch.setenv("SER_CACHE", str(target))
    code, err = run(["fit", "trainer.max_epochs=1"], capsys)
    assert code == 2
    one_clear_line(err, str(target))


@pytest.mark.parametrize(
    ("field", "value", "needle"),
    [
        ("labels", 5, "labels"),
        ("row_shape", "abc", "row_shape"),
        ("kind", "spectrum", "kind"),
        ("config", {"data": {"audio": {"duration": 0}}}, "data.audio.duration"),
    ],
)
def test_checkpoint_metadata_of_the_wrong_type(
    tiny_run, tmp_path: Path, capsys, field, value, needle
) -> None:
    raw = torch.load(tiny_run.folds[0].checkpoint, weights_only=True)
    if field == "config":
        raw["ser"]["config"]["data"]["audio"]["duration"] = 0
    else:
        raw["ser"][field] = value
    bad = tmp_path / "bad.ckpt"
    torch.save(raw, bad)
    clip = tmp_path / "c.wav"
    sf.write(clip, (0.1 * np.random.default_rng(0).standard_normal(16000)).astype(np.float32), 16000)
    code, err = run(["predict", str(bad), str(clip)], capsys)
    assert code == 2
    one_clear_line(err, "bad.ckpt", needle)


def test_checkpoint_errors_do_not_advise_unpickling(tmp_path: Path, capsys) -> None:
    evil = tmp_path / "evil.ckpt"
    torch.save({"state_dict": Path("/etc/passwd")}, evil)  # a global weights-only loading refuses
    code, err = run(["predict", str(evil), str(evil)], capsys)
    assert code == 2 and "weights_only" not in err and "evil.ckpt" in err


def test_a_damaged_cache_entry_is_reported_and_rebuilt(tiny_cfg_factory, capsys) -> None:
    from ser.data.prepared import prepare_data

    cfg = tiny_cfg_factory()
    first = prepare_data(cfg, progress=False)
    entry = Path(first.x.filename).parent if hasattr(first.x, "filename") else None
    assert entry is not None and (entry / "x.npy").is_file()
    original = np.array(first.x)
    # a same-size overwrite: random rows where the features were
    data = np.load(entry / "x.npy")
    noise = np.random.default_rng(0).standard_normal(data.shape).astype(data.dtype)
    np.save(entry / "x.npy", noise)
    again = prepare_data(cfg, progress=False)
    assert "recomputing cache entry" in capsys.readouterr().err
    np.testing.assert_allclose(np.asarray(again.x), original)
    # a 0-byte file
    (entry / "x.npy").write_bytes(b"")
    third = prepare_data(cfg, progress=False)
    assert "recomputing cache entry" in capsys.readouterr().err
    np.testing.assert_allclose(np.asarray(third.x), original)


def test_predict_table_shows_file_names(tmp_path: Path) -> None:
    from ser.inference.predict import display_names

    deep = "/very/long/path/that/would/be/cut/from/the/right"
    assert display_names([f"{deep}/a.wav", f"{deep}/b.wav"]) == ["a.wav", "b.wav"]
    assert display_names(["/x/one/clip.wav", "/x/two/clip.wav"]) == ["one/clip.wav", "two/clip.wav"]


def test_folder_corpus_warns_before_its_tables(tmp_path: Path, wav_writer, capsys) -> None:
    for label in ("angry", "sad"):
        wav_writer(tmp_path / "c" / label / f"{label}_1.wav")
    assert main(["data", "inspect", str(tmp_path / "c"), "--corpus", "folder"]) == 0
    out = capsys.readouterr().out
    assert out.index("speaker-independent") < out.index("Labels")
    assert "(?P<speaker>" in out


def test_metrics_json_is_one_schema_for_fit_and_evaluate(tiny_run, tmp_path: Path) -> None:
    from ser.training.evaluate import evaluate_checkpoint

    fit = json.loads((tiny_run.run_dir / "metrics.json").read_text())
    evaluated = evaluate_checkpoint(tiny_run.folds[0].checkpoint, out_dir=tmp_path / "e")["metrics"]
    trained_only = {"execution"}  # how the folds trained (fused, lockstep, per model): fit and trials only
    assert set(fit) - trained_only <= set(evaluated) and fit["schema_version"] == evaluated["schema_version"]
    assert fit["execution"]["mode"] == "sequential"
