"""`inspect_corpus` counts and the rich report, on a tiny RAVDESS-named corpus."""

from __future__ import annotations

import importlib.util
import io
import json

import pytest
from rich.console import Console

from ser.config import CorpusSpec, SyntheticConfig
from ser.data.inspect import inspect_corpus, print_report
from ser.data.types import CorpusError


@pytest.fixture
def corpus(tmp_path, wav_writer):
    root = tmp_path / "ravdess"
    wav_writer(root / "Actor_01/03-01-05-01-02-01-01.wav", seconds=0.5)
    wav_writer(root / "Actor_01/03-01-05-01-02-02-01.wav", seconds=0.25, channels=2)
    wav_writer(root / "Actor_01/03-01-01-01-01-01-01.wav", seconds=0.3, sample_rate=48000)
    wav_writer(root / "Actor_02/03-01-03-01-01-01-02.wav", seconds=0.4)
    wav_writer(root / "Actor_02/03-01-03-01-01-02-02.wav", kind="silence")
    wav_writer(root / "Actor_02/03-02-03-01-01-01-02.wav")
    return root


def test_inspect_counts_everything(corpus):
    report = inspect_corpus(CorpusSpec(name="ravdess", root=str(corpus)))
    assert report["corpus"] == "ravdess" and report["root"] == str(corpus)
    assert report["utterances"] == 4 and report["speakers"] == 2
    assert report["labels"] == {"neutral": 1, "happy": 1, "angry": 2}
    assert list(report["labels"]) == ["neutral", "happy", "angry"]  # canonical order
    assert report["per_speaker"] == {
        "ravdess:01": {"neutral": 1, "happy": 0, "angry": 2},
        "ravdess:02": {"neutral": 0, "happy": 1, "angry": 0},
    }
    assert report["genders"] == {"f": 1, "m": 1}
    assert report["duration"]["min"] == pytest.approx(0.25)
    assert report["duration"]["max"] == pytest.approx(0.5)
    assert report["duration"]["total"] == pytest.approx(1.45)
    assert report["duration"]["mean"] == pytest.approx(1.45 / 4)
    assert report["sample_rates"] == {16000: 3, 48000: 1}
    assert report["channels"] == {1: 3, 2: 1}
    skipped = {item["path"].rsplit("/", 1)[-1]: item["reason"] for item in report["skipped"]}
    assert skipped["03-01-03-01-01-02-02.wav"].startswith("silent (peak 0")
    assert "song" in skipped["03-02-03-01-01-01-02.wav"]
    json.dumps(report)


def test_print_report_shows_tables_and_every_skipped_file(corpus):
    report = inspect_corpus(CorpusSpec(name="ravdess", root=str(corpus)))
    out = io.StringIO()
    print_report(report, console=Console(file=out, width=160, color_system=None))
    text = out.getvalue()
    for expected in ("Labels", "Speakers x labels", "angry", "48000 Hz x 1", "2 x 1", "Skipped files (2)"):
        assert expected in text, expected
    assert "Actor_02/03-01-03-01-01-02-02.wav" in text and "silent (peak 0" in text
    assert "song (vocal channel 02)" in text


def test_inspect_of_unusable_root_raises(tmp_path):
    with pytest.raises(CorpusError, match="does not exist"):
        inspect_corpus(CorpusSpec(name="tess", root=str(tmp_path / "nope")))


@pytest.mark.skipif(importlib.util.find_spec("ser.data.synthetic") is None, reason="no synthetic yet")
def test_inspect_synthetic_names_its_materialised_root(tmp_path, monkeypatch):
    monkeypatch.setenv("SER_CACHE", str(tmp_path))
    cfg = SyntheticConfig(speakers=2, per_label=1, labels=["sad", "angry"], duration=0.3)
    report = inspect_corpus(CorpusSpec(name="synthetic"), synthetic=cfg)
    assert report["root"].startswith(str(tmp_path)) and report["utterances"] == 4
    assert report["labels"] == {"sad": 2, "angry": 2} and report["speakers"] == 2
