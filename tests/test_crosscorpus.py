"""Cross-corpus evaluation (label intersection, the whole corpus as the test set) and the matrix."""

from __future__ import annotations

import csv
import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from ser.config import ConfigError, SyntheticConfig
from ser.data.synthetic import write_corpus
from ser.report.metrics import classification_metrics
from ser.report.predictions import read_predictions
from ser.training.crosscorpus import Cell, CorpusEntry, parse_corpus, write_matrix
from ser.training.evaluate import evaluate_checkpoint

TINY_MODEL = [
    "data.audio.duration=1.0",
    "data.batch_size=16",
    "model.depth=2",
    "model.channels=8",
    "model.hidden=32",
    "trainer.max_epochs=2",
    "trainer.progress_bar=false",
]


def corpus(
    root: Path, style: str, labels: list[str], seed: int, speakers: int = 4, per_label: int = 3
) -> Path:
    cfg = SyntheticConfig(speakers=speakers, per_label=per_label, labels=labels, duration=1.0, seed=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        write_corpus(root, style, cfg)
    return root


@pytest.fixture(scope="module")
def emodb_root(tmp_path_factory) -> Path:
    """EMO-DB-named synthetic voices (another seed) with fewer and other labels than the tiny model's."""
    return corpus(tmp_path_factory.mktemp("xc") / "emodb", "emodb", ["neutral", "sad", "fearful"], seed=5)


def test_checkpoint_on_a_corpus_with_a_smaller_label_set(tiny_run, emodb_root, tmp_path, capsys):
    """The issue's case: other corpus, other labels. Scored on the shared classes over the whole corpus;
    what is dropped on either side is printed; UA averages over the classes present only."""
    from ser.cli import main

    checkpoint = tiny_run.folds[0].checkpoint
    out = tmp_path / "eval"
    code = main(
        ["evaluate", checkpoint, "--config", "data/emodb", f"data.root={emodb_root}", "--out", str(out)]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "evaluating on emodb" in printed
    assert "evaluated classes (2): neutral, sad" in printed
    assert "dropped from the data (not classes of the model): fearful (12)" in printed
    assert (
        "model classes absent from the data: happy, angry; UA and macro-F1 average over the 2 classes"
        in printed
    )
    assert "over the whole corpus" in printed
    metrics = json.loads((out / "metrics.json").read_text())
    (fold,) = metrics["folds"]
    assert fold["sizes"] == {"train": 0, "val": 0, "test": 24}
    assert sorted(fold["speakers"]["test"]) == ["emodb:03", "emodb:08", "emodb:09", "emodb:10"]
    recall = fold["test"]["per_class_recall"]
    assert recall["happy"] is None and recall["angry"] is None
    assert fold["test"]["uar"] == pytest.approx((recall["neutral"] + recall["sad"]) / 2)
    assert metrics["evaluation"]["labels"] == {
        "evaluated": ["neutral", "sad"],
        "dropped": {"fearful": 12},
        "absent": ["happy", "angry"],
    }
    assert metrics["evaluation"]["cross_corpus"] and metrics["evaluation"]["whole_corpus"]
    assert any(
        s["reason"].startswith("label 'fearful' is not a class of the model") for s in metrics["skipped"]
    )
    pred = read_predictions(out / "whole_corpus" / "predictions.npz")
    assert len(pred) == 24 and pred.labels == ["neutral", "happy", "sad", "angry"]
    assert pred.embeddings is not None and pred.embeddings.shape[0] == 24
    again = classification_metrics(pred.y, pred.pred, pred.labels)
    assert again["confusion"] == fold["test"]["confusion"]


def test_asked_fold_is_scored_instead_of_the_whole_corpus(tiny_run, emodb_root, tmp_path):
    result = evaluate_checkpoint(
        tiny_run.folds[0].checkpoint, ["data/emodb"], [f"data.root={emodb_root}", "data.fold=1"], tmp_path
    )
    (fold,) = result["folds"]
    assert fold.fold == 1 and fold.speakers["test"] == ["emodb:08"] and fold.sizes["test"] == 6
    assert not result["metrics"]["evaluation"]["whole_corpus"]
    assert (tmp_path / "fold_1" / "predictions.npz").is_file()


def test_no_shared_class_is_a_clear_error(tiny_run, tmp_path, capsys):
    from ser.cli import main

    root = corpus(tmp_path / "savee", "savee", ["fearful", "disgust"], seed=2, per_label=1)
    code = main(["evaluate", tiny_run.folds[0].checkpoint, "--config", "data/savee", f"data.root={root}"])
    assert code == 2
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]
    assert last.startswith("ser: error: ") and "share none" in last and "data.label_map" in last


def test_same_corpus_with_another_root_does_not_inherit_the_training_folds(tiny_run, tmp_path):
    """A change of synthetic voices is another corpus: whole-corpus scoring, no false speaker leak."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = evaluate_checkpoint(tiny_run.folds[0].checkpoint, [], ["data.synthetic.seed=9"], tmp_path)
    assert result["cross_corpus"] and result["metrics"]["evaluation"]["whole_corpus"]
    assert result["folds"][0].sizes["test"] == 4 * 4 * 4
    assert not any("not speaker-independent" in str(w.message) for w in caught)


# ----------------------------------------------------------------------------------------- the matrix
def test_parse_corpus_arguments(tmp_path):
    assert parse_corpus("emodb:/data/emodb") == CorpusEntry(
        "emodb", ("data/emodb",), ("data.corpus=emodb", "data.root=/data/emodb")
    )
    assert parse_corpus("synthetic").overrides == ("data.corpus=synthetic",)
    spec = tmp_path / "seed1.yaml"
    spec.write_text("data: {synthetic: {seed: 1}}\n")
    assert parse_corpus(str(spec)) == CorpusEntry("seed1", (str(spec),))
    with pytest.raises(ConfigError, match="'aibo' is not one of"):
        parse_corpus("aibo:/data")


def test_write_matrix_files(tmp_path):
    cells = {
        ("a", "a"): Cell("a", "a", uar=[0.6, 0.8], classes=4),
        ("a", "b"): Cell("a", "b", uar=[0.4, 0.5], classes=3, dropped={"boredom": 5}),
        ("b", "a"): Cell("b", "a", uar=[0.3], classes=3),
        ("b", "b"): Cell("b", "b", uar=[0.9, 0.7], classes=5),
    }
    result = write_matrix(["a", "b"], cells, tmp_path)
    rows = list(csv.reader((tmp_path / "crosscorpus.csv").open()))
    assert rows == [
        ["trained on \\ tested on", "a", "b"],
        ["a", "0.7000", "0.4500"],
        ["b", "0.3000", "0.8000"],
    ]
    assert np.allclose(
        result["sd"],
        [[np.std([0.6, 0.8], ddof=1), np.std([0.4, 0.5], ddof=1)], [0, np.std([0.9, 0.7], ddof=1)]],
    )
    cell = next(
        c
        for c in json.loads((tmp_path / "crosscorpus.json").read_text())["cells"]
        if c["test"] == "b" and c["train"] == "a"
    )
    assert cell["dropped_from_test_data"] == {"boredom": 5} and cell["models"] == 2
    assert (tmp_path / "crosscorpus.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_crosscorpus_command_on_two_synthetic_styles(tmp_path, capsys):
    """Two corpora written in different namings and voices: a 2x2 matrix whose diagonal is each corpus's
    own speaker-independent fold and whose other cells score every fold checkpoint on the other corpus."""
    from ser.cli import main

    labels = ["neutral", "happy", "sad", "angry"]
    ravdess = corpus(tmp_path / "ravdess", "ravdess", labels, seed=0)
    emodb = corpus(tmp_path / "emodb", "emodb", [*labels, "calm"], seed=1)  # + boredom
    out = tmp_path / "matrix"
    code = main(
        ["crosscorpus", f"ravdess:{ravdess}", f"emodb:{emodb}", "--out", str(out), "data.fold=0", *TINY_MODEL]
    )
    assert code == 0
    rows = list(csv.reader((out / "crosscorpus.csv").open()))
    assert rows[0] == ["trained on \\ tested on", "ravdess", "emodb"] and [r[0] for r in rows[1:]] == [
        "ravdess",
        "emodb",
    ]
    values = np.array([[float(v) for v in r[1:]] for r in rows[1:]])
    assert np.all((values >= 0) & (values <= 1))
    cells = {(c["train"], c["test"]): c for c in json.loads((out / "crosscorpus.json").read_text())["cells"]}
    fit = json.loads((out / "runs" / "ravdess" / "metrics.json").read_text())
    assert cells[("ravdess", "ravdess")]["uar_mean"] == pytest.approx(fit["summary"]["test/uar"]["mean"])
    off = json.loads((out / "evals" / "ravdess_on_emodb" / "fold_0" / "metrics.json").read_text())
    assert cells[("ravdess", "emodb")]["uar_mean"] == pytest.approx(off["summary"]["test/uar"]["mean"])
    assert cells[("ravdess", "emodb")]["dropped_from_test_data"] == {"boredom": 12}
    assert cells[("emodb", "ravdess")]["classes"] == 4 and cells[("emodb", "emodb")]["classes"] == 5
    assert values[0, 0] == pytest.approx(cells[("ravdess", "ravdess")]["uar_mean"], abs=1e-4)
    assert (out / "crosscorpus.png").stat().st_size > 10_000
    assert "ravdess -> emodb: UA" in capsys.readouterr().err


def test_a_missing_corpus_fails_before_any_training(emodb_root, tmp_path, capsys):
    from ser.cli import main

    out = tmp_path / "matrix"
    assert main(["crosscorpus", f"emodb:{emodb_root}", f"savee:{tmp_path / 'nope'}", "--out", str(out)]) == 2
    assert "savee: root" in capsys.readouterr().err and not (out / "runs").exists()
    assert main(["crosscorpus", f"emodb:{emodb_root}", f"emodb:{emodb_root}"]) == 2
    assert "given twice" in capsys.readouterr().err
