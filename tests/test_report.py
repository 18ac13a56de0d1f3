"""Per-utterance predictions and the evaluation report: its numbers, and the self-contained HTML page."""

from __future__ import annotations

import json
import re
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

from ser.config import SyntheticConfig
from ser.data.synthetic import write_corpus
from ser.report.analysis import entropy, per_speaker, project, reliability
from ser.report.html import write_report
from ser.report.metrics import classification_metrics
from ser.report.predictions import Predictions, concat, read_predictions, write_predictions


def fake(n_speakers: int = 3, per: int = 20, seed: int = 0) -> Predictions:
    rng = np.random.default_rng(seed)
    n = n_speakers * per
    y = np.tile(np.arange(4), n // 4 + 1)[:n]
    probs = rng.dirichlet(np.ones(4), size=n).astype(np.float32)
    return Predictions(
        labels=["neutral", "happy", "sad", "angry"],
        ids=np.array([f"c:{i}" for i in range(n)]),
        speakers=np.repeat([f"c:s{k}" for k in range(n_speakers)], per),
        genders=np.repeat(["m", "f", "m"][:n_speakers], per),
        y=y,
        probs=probs,
        embeddings=rng.normal(size=(n, 8)).astype(np.float32),
        fold=2,
    )


# ------------------------------------------------------------------------------------- predictions
def test_predictions_round_trip_and_check_shapes(tmp_path):
    pred = fake()
    again = read_predictions(write_predictions(tmp_path / "fold_2" / "predictions.npz", pred))
    assert again.labels == pred.labels and again.fold == 2
    for name in ("ids", "speakers", "genders", "y", "probs", "embeddings"):
        assert np.array_equal(getattr(again, name), getattr(pred, name)), name
    pooled = concat([pred, fake(seed=1)])
    assert len(pooled) == 120 and pooled.embeddings is None
    with pytest.raises(ValueError, match="probs"):
        Predictions(
            ["a", "b"], np.array(["x"]), np.array(["s"]), np.array([""]), np.array([0]), np.zeros((1, 3))
        )


def test_fit_writes_predictions_that_reproduce_the_test_metrics(tiny_run):
    fold = tiny_run.folds[0]
    pred = read_predictions(Path(fold.checkpoint).parent / "predictions.npz")
    assert len(pred) == fold.sizes["test"] and set(pred.speakers) == set(fold.speakers["test"])
    assert classification_metrics(pred.y, pred.pred, pred.labels)["confusion"] == fold.test["confusion"]
    assert np.allclose(pred.probs.sum(axis=1), 1, atol=1e-5)
    assert pred.embeddings is not None and pred.embeddings.ndim == 2 and len(pred.embeddings) == len(pred)


# -------------------------------------------------------------------------------------------- numbers
def test_reliability_bins_and_ece_by_hand():
    probs = np.array([[0.95, 0.05], [0.95, 0.05], [0.55, 0.45], [0.55, 0.45]])
    y = np.array([0, 1, 0, 0])  # 0.95 bin: 1 of 2 right; 0.55 bin: 2 of 2 right
    rel = reliability(probs, y, bins=10)
    assert rel.count.tolist() == [0, 0, 0, 0, 0, 2, 0, 0, 0, 2]
    assert rel.accuracy[9] == 0.5 and rel.confidence[5] == pytest.approx(0.55)
    assert rel.ece == pytest.approx(0.5 * 0.45 + 0.5 * 0.45)
    assert rel.mce == pytest.approx(0.45)
    assert reliability(np.eye(3), np.arange(3)).ece == pytest.approx(0.0)


def test_per_speaker_ua_worst_first_and_entropy_bounds():
    pred = fake()
    pred.probs[:] = 0.0
    pred.probs[np.arange(len(pred)), pred.y] = 1.0  # all right ...
    pred.probs[:20] = np.roll(pred.probs[:20], 1, axis=1)  # ... but speaker s0 all wrong
    scores = per_speaker(pred)
    assert [s.speaker for s in scores][0] == "c:s0" and scores[0].uar == 0.0
    assert [s.uar for s in scores[1:]] == [1.0, 1.0] and scores[0].n == 20 and scores[0].classes == 4
    assert entropy(np.full((2, 4), 0.25)) == pytest.approx([1.0, 1.0])
    assert entropy(np.eye(4)) == pytest.approx(np.zeros(4), abs=1e-9)


def test_projection_silhouettes_tell_speaker_from_emotion_clusters():
    rng = np.random.default_rng(0)
    speakers = np.repeat(["a", "b", "c"], 30)
    emotions = np.tile(["x", "y", "z"], 30)
    centre = {"a": 0.0, "b": 10.0, "c": 20.0}
    emb = np.array([[centre[s], -centre[s]] for s in speakers]) + rng.normal(scale=0.5, size=(90, 2))
    proj = project(np.column_stack([emb, rng.normal(size=(90, 3))]), emotions, speakers, "pca")
    assert proj.points.shape == (90, 2) and proj.method.startswith("PCA")
    assert proj.speaker_silhouette > proj.emotion_silhouette + 0.15
    assert project(emb, emotions, speakers, "tsne").method == "t-SNE"


# ------------------------------------------------------------------------------------------------ page
def _srcs(page: str) -> list[str]:
    return re.findall(r'(?:src|href)="([^"]+)"', page)


def test_report_of_a_fit_run_is_self_contained(tiny_run, tmp_path):
    path = write_report(tiny_run.run_dir, out=tmp_path / "report.html")
    page = path.read_text()
    assert page.startswith("<!doctype html>") and "ser report: tiny" in page
    assert all(src.startswith("data:image/png;base64,") for src in _srcs(page)) and len(_srcs(page)) >= 6
    assert "http://" not in page and "https://" not in page
    for heading in (
        "Test folds",
        "Classes",
        "Speakers",
        "Confidence",
        "Embeddings",
        "Warnings and skipped files",
    ):
        assert f"<h2>{heading}</h2>" in page
    pred = read_predictions(Path(tiny_run.folds[0].checkpoint).parent / "predictions.npz")
    worst = per_speaker(pred)[0]
    assert f"Worst speakers: <b>{worst.speaker.split(':')[1]}</b> (UA {worst.uar:.2f}" in page
    assert f"ECE {reliability(pred.probs, pred.y).ece:.3f}" in page
    # the training curves with the kept epoch named (1-based), and the config folded
    training = page[page.index('<h2 id="training">') : page.index('<h2 id="config">')]
    fold = tiny_run.folds[0]
    assert f"fold {fold.fold}: epoch {fold.selection.epoch + 1} of {fold.epochs}" in training
    assert 'alt="training curves"' in training
    assert "<details><summary>config.yaml (" in page and "max_epochs:" in page


@pytest.fixture(scope="module")
def cross_eval(tiny_run, tmp_path_factory) -> Path:
    from ser.training.evaluate import evaluate_checkpoint

    root = tmp_path_factory.mktemp("report") / "esd"
    cfg = SyntheticConfig(
        speakers=4, per_label=4, labels=["neutral", "happy", "sad", "surprised"], duration=1.0, seed=3
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        write_corpus(root, "esd", cfg)
    out = root.parent / "eval"
    evaluate_checkpoint(tiny_run.folds[0].checkpoint, ["data/esd"], [f"data.root={root}"], out)
    return out


def test_report_of_a_cross_corpus_evaluation_names_both_corpora_and_the_label_match(cross_eval):
    page = write_report(cross_eval, projection="tsne").read_text()
    assert (cross_eval / "report.html").is_file()
    assert 'trained on</th><td class="l">synthetic (seed 0)' in page
    assert f'evaluated on</th><td class="l">esd ({cross_eval.parent / "esd"})' in page
    assert "surprised (16)" in page and 'model classes absent</th><td class="l">angry' in page
    assert 'id="separation"' in page and "t-SNE" in page
    assert "the whole corpus" in page


def test_report_of_a_sweep_reads_its_best_trial(tiny_run, tmp_path):
    sweep = tmp_path / "sweep"
    shutil.copytree(tiny_run.run_dir, sweep / "best")
    (sweep / "leaderboard.csv").write_text("rank,trial_id\n1,t0001\n")
    (sweep / "best_config.yaml").write_text((tiny_run.run_dir / "config.yaml").read_text())
    path = write_report(sweep)
    assert path == sweep / "report.html"
    page = path.read_text()
    assert "ser report: sweep" in page and "best trial of the sweep, chosen on validation" in page
    assert "<summary>best_config.yaml (" in page


def test_report_without_predictions_says_why_and_bad_paths_are_user_errors(tiny_run, tmp_path, capsys):
    from ser.cli import main

    old = tmp_path / "old"
    old.mkdir()
    shutil.copy(tiny_run.run_dir / "metrics.json", old / "metrics.json")
    page = write_report(old).read_text()
    assert "No per-utterance predictions" in page and "<h2>Speakers</h2>" not in page
    assert main(["report", str(tmp_path / "nothing")]) == 2
    assert "no metrics.json" in capsys.readouterr().err
    assert main(["report", str(old), "--out", str(tmp_path / "r.html")]) == 0
    assert json.loads((old / "metrics.json").read_text())["model"] in (tmp_path / "r.html").read_text()
