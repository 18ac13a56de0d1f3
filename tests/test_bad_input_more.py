"""The bad inputs an outside tester still got through (issue 21, section 3): each is one `ser: error: ...`
line naming the file or key with exit code 2, or a reported skip; never a traceback, a hang or a NaN."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ser.cli import main
from tests.test_bad_input import one_clear_line, run

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
    assert main(["fit", "--print-config", long]) == 0
    assert "a" * 300 in capsys.readouterr().out
    from ser.cli.args import is_override
    from ser.config import CorpusSpec
    from ser.data.corpora import scan_corpus
    from ser.data.types import CorpusError

    assert is_override(long) and is_override("data.root=" + "b" * 5000)
    with pytest.raises(CorpusError, match="cannot be read"):
        scan_corpus(CorpusSpec(name="folder", root="a" * 300))


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
        (["trainer.seed=100000000000000000000000"], ["trainer.seed", "4294967295"]),
        (["data.fold_seed=-1"], ["data.fold_seed", ">= 0"]),
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


def test_an_unresolvable_interpolation_through_the_real_command() -> None:
    done = cli("fit", "data.root=${nonexistent.key}", "--print-config", timeout=60)
    err = done.stderr.decode()
    assert done.returncode == 2 and not done.stdout, err
    want = "ser: error: invalid config key 'data.root' in overrides: Interpolation key 'nonexistent.key'"
    assert err.strip().splitlines() == [f"{want} not found"]


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


@pytest.mark.parametrize("command", ["fit", "holdout"])
def test_output_dir_that_is_a_file(tmp_path: Path, command: str) -> None:
    blocker = tmp_path / "runs"
    blocker.write_text("not a folder")
    for out, needle in ((blocker, "is a file"), (blocker / "sub", f"is inside {blocker}, which is a file")):
        done = cli(command, f"trainer.output_dir={out}", "data.holdout.fraction=0.25", timeout=60)
        err = done.stderr.decode()
        assert done.returncode == 2 and "Traceback" not in err, err
        assert err.strip().splitlines() == [
            f"ser: error: invalid config key 'trainer.output_dir': {out} {needle}; give a folder"
        ]


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


def overflow(raw: dict) -> None:
    """Finite weights whose products overflow float32: inf logits, NaN probabilities."""
    for key, value in raw["state_dict"].items():
        if key.endswith("weight") and value.is_floating_point():
            value.fill_(3e38)


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


def test_sweep_file_with_a_very_long_path_is_404(tiny_run, tmp_path: Path) -> None:
    pytest.importorskip("fastapi", reason="the web UI needs the `ui` extra (fastapi)")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient
    from ser.inference.scorer import load_scorer
    from ser.serve.app import create_app

    sweep = tmp_path / "sweep"
    sweep.mkdir()
    (sweep / "leaderboard.csv").write_text("trial_id,status\n")
    app = create_app(load_scorer(tiny_run.folds[0].checkpoint), sweep_dir=sweep)
    client = TestClient(app, base_url="http://127.0.0.1")  # re-raises any server error: none may happen
    response = client.get("/sweep/files/" + "/".join(["seg"] * 3000) + "/x.png")
    assert response.status_code == 404 and len(response.text) < 1000


# ------------------------------------------------------------------------------------ corpus scans
def test_a_backtracking_speaker_regex_names_the_file(tmp_path: Path, wav_writer, capsys) -> None:
    root = tmp_path / "c"
    for label in ("angry", "sad"):
        wav_writer(root / label / "aaa.wav")
    wav_writer(root / "sad" / ("a" * 40 + "!.wav"))
    argv = ["data", "inspect", str(root), "--corpus", "folder", "--speaker-regex"]
    # the tester's pattern (nested +) hung Python's re; the regex engine answers it at once
    assert (
        main(
            [
                "data",
                "inspect",
                str(root),
                "--corpus",
                "folder",
                "--json",
                "--speaker-regex",
                "^(?P<speaker>(a+)+)$",
            ]
        )
        == 0
    )
    skipped = json.loads(capsys.readouterr().out)["skipped"]
    assert [Path(s["path"]).name for s in skipped] == ["a" * 40 + "!.wav"]
    assert "does not match speaker_regex" in skipped[0]["reason"]
    refused([*argv, "^(?P<speaker>(a|aa)+)$"], capsys, "speaker_regex", "a" * 40 + "!.wav", "backtracks")


def test_a_one_clip_label_is_warned_with_the_nearest_label(tmp_path: Path, wav_writer) -> None:
    from ser.config import load_config
    from ser.data.dataset import build_dataset

    rows = ["path,label,speaker"]
    for i in range(12):
        for label in ("happy", "sad"):
            wav_writer(tmp_path / f"{label}{i}.wav")
            rows.append(f"{label}{i}.wav,{label},spk{i % 3}")
    wav_writer(tmp_path / "typo.wav")
    rows.append("typo.wav,hapy,spk0")
    (tmp_path / "list.csv").write_text("\n".join(rows) + "\n")
    cfg = load_config(overrides=["data.corpus=manifest", f"data.root={tmp_path / 'list.csv'}"])
    data = build_dataset(cfg.data, check_audio=False)
    warned = [w for w in data.warnings if "'hapy'" in w]
    assert len(warned) == 1 and "did you mean 'happy'" in warned[0] and "typo.wav" in warned[0], data.warnings
    assert not [w for w in data.warnings if "'sad'" in w or "'happy' has" in w]


def test_a_file_name_that_is_not_utf8_is_reported_as_such(tmp_path: Path, wav_writer, capsys) -> None:
    import shutil

    root = tmp_path / "c"
    for label in ("angry", "sad"):
        wav_writer(root / label / "s1_a.wav")
    bad = os.fsencode(str(root / "sad")) + b"/s2_\xff.wav"
    shutil.copy(os.fsencode(str(root / "sad" / "s1_a.wav")), bad)
    assert main(["data", "inspect", str(root), "--corpus", "folder", "--json", "--compact"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["skipped"] == [{"path": str(root / "sad" / "s2_\\xff.wav"), "reason": ANY_UTF8}]
    from ser.data.audio import AudioError, load_audio

    with pytest.raises(AudioError, match="not valid UTF-8"):
        load_audio(os.fsdecode(bad), 16000)


ANY_UTF8 = "file name is not valid UTF-8: rename it"


# -------------------------------------------------------------------------------------- the cache
def test_reordering_a_cache_entrys_ids_is_caught(tiny_cfg_factory, capsys) -> None:
    from ser.data.prepared import prepare_data

    cfg = tiny_cfg_factory()
    first = prepare_data(cfg, progress=False)
    entry = Path(first.x.filename).parent
    index = entry / "index.json"
    meta = json.loads(index.read_text())
    meta["ids"] = meta["ids"][::-1]  # every row now claims another utterance (and its label)
    index.write_text(json.dumps(meta, indent=1))
    capsys.readouterr()
    again = prepare_data(cfg, progress=False)
    assert "recomputing cache entry" in capsys.readouterr().err
    assert again.utterance_ids == first.utterance_ids
    np.testing.assert_array_equal(np.asarray(again.x), np.asarray(first.x))


def disk_full_on(path: str = "/dev/full"):
    """A writer that really hits ENOSPC: the bytes go to /dev/full."""

    def write(*args, **kwargs):
        with open(path, "wb") as fh:
            fh.write(b"\0" * (1 << 16))
            fh.flush()

    return write


def test_a_full_disk_under_the_cache_is_one_line(tmp_path: Path, monkeypatch, capsys) -> None:
    cache = tmp_path / "cache"
    monkeypatch.setenv("SER_CACHE", str(cache))
    import ser.data.cache as cache_module

    monkeypatch.setattr(cache_module.np, "save", disk_full_on())
    from tests.conftest import TINY_OVERRIDES

    refused(
        ["fit", *TINY_OVERRIDES, f"trainer.output_dir={tmp_path / 'runs'}"],
        capsys,
        "no space left",
        str(cache),
    )
    assert not list(cache.glob("*/.tmp-*")), "a half-written entry was left behind"


def test_a_failed_wav_write_in_the_cache_is_one_line(tmp_path: Path, monkeypatch, capsys) -> None:
    import soundfile as sf

    import ser.data.synthetic.naming as naming

    real = sf.write
    monkeypatch.setenv("SER_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(naming.sf, "write", lambda path, *a, **k: real("/dev/full", *a, format="WAV", **k))
    from tests.conftest import TINY_OVERRIDES

    refused(["fit", *TINY_OVERRIDES], capsys, "could not write", "System error")  # the disk has room
    import shutil
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(1 << 30, 1 << 30, 0))  # now it has none
    refused(["fit", *TINY_OVERRIDES], capsys, "no space left on device", str(tmp_path / "cache"))


def test_a_full_disk_under_the_output_folder_is_one_line(
    tiny_env, tmp_path: Path, monkeypatch, capsys
) -> None:
    import ser.training.fit as fit_module
    from tests.conftest import TINY_OVERRIDES

    monkeypatch.setattr(fit_module, "write_metrics", disk_full_on())
    out = tmp_path / "runs"
    refused(
        ["fit", *TINY_OVERRIDES, "trainer.max_epochs=1", f"trainer.output_dir={out}"],
        capsys,
        "no space left",
        str(out),
        "trainer.output_dir",
    )


def test_any_unwrapped_enospc_is_one_line(capsys) -> None:
    from ser.cli.errors import run_reporting_errors

    def write():
        with open("/dev/full", "wb") as fh:
            fh.write(b"x" * 4096)
            fh.flush()

    assert run_reporting_errors(write) == 2
    one_clear_line(capsys.readouterr().err, "no space left on device")


# ------------------------------------------------------------------------------------ model sizes
def test_a_model_too_large_to_build_is_refused_before_allocating() -> None:
    from ser.config import ConfigError, load_config
    from ser.models.registry import build_model

    cfg = load_config(overrides=["model.channels=8192", "model.max_channels=8192", "model.depth=6"])
    with pytest.raises(ConfigError, match=r"model\.channels=8192.*parameters"):
        build_model(cfg.model, (1, 64, 151), 4)  # 3e9 parameters: 12 GB, checked on the meta device


def test_a_holdout_fraction_that_leaves_too_few_speakers() -> None:
    from ser.config import ConfigError
    from ser.data.folds import choose_held_out

    speakers = [f"s{i}" for i in range(6)]
    with pytest.raises(ConfigError, match=r"data\.holdout\.fraction.*0\.9 of 6 speakers holds out 5"):
        choose_held_out(speakers, {}, [], 0.9, 0)
    assert len(choose_held_out(speakers, {}, [], 0.5, 0)) == 3


def test_the_web_ui_answers_non_finite_probabilities_with_a_4xx(tiny_run, tmp_path: Path, wav_writer) -> None:
    pytest.importorskip("fastapi", reason="the web UI needs the `ui` extra (fastapi)")
    pytest.importorskip("multipart", reason="the web UI needs the `ui` extra (python-multipart)")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient
    from ser.inference.scorer import load_scorer
    from ser.serve.app import create_app

    client = TestClient(
        create_app(load_scorer(damaged_checkpoint(tiny_run, tmp_path, overflow))), base_url="http://127.0.0.1"
    )
    clip = wav_writer(tmp_path / "c.wav", seconds=1.0).read_bytes()
    response = client.post("/api/predict", files={"file": ("c.wav", clip, "audio/wav")})
    assert response.status_code == 422 and "non-finite" in response.text and "NaN," not in response.text
