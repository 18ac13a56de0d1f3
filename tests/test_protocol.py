"""Protocols in which no number used to choose has seen the speakers it reports: held-out speakers
(`data.holdout` + `ser holdout`) and nested cross-validation of a sweep (`sweep.nested`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from ser.config import ConfigError
from ser.data.folds import choose_held_out, holdout_fold, speaker_folds, split_utterances

SIX = [
    "data.synthetic.speakers=6",
    "data.synthetic.per_label=4",
    "data.folds=2",
]


def test_held_out_speakers_are_in_no_split_of_any_fold() -> None:
    speakers = [f"c:s{i}" for i in range(10)]
    genders = {s: "mf"[i % 2] for i, s in enumerate(speakers)}
    held = choose_held_out(speakers, genders, [], 0.2, seed=3)
    assert len(held) == 2 and {genders[s] for s in held} == {"m", "f"}  # gender-balanced
    folds = speaker_folds(speakers, 4, 1, 0, genders, held_out=held)
    for fold in folds:
        assert fold.test == () and fold.held_out == tuple(held)
        assert not set(held) & (set(fold.train) | set(fold.val))
        assert sorted([*fold.train, *fold.val, *held]) == sorted(speakers)
    assert sorted(s for f in folds for s in f.val) == sorted(set(speakers) - set(held))  # each validates once
    utterances = [s for s in speakers for _ in range(3)]
    train, val, test = split_utterances(utterances, folds[0])
    assert len(test) == 0 and not {utterances[i] for i in [*train, *val]} & set(held)
    final = holdout_fold(folds)
    assert final.test == tuple(held) and final.train == folds[0].train and final.val == folds[0].val


def test_speakers_are_named_by_their_corpus_id() -> None:
    speakers = ["ravdess:01", "ravdess:02", "ravdess:03", "ravdess:04"]
    assert choose_held_out(speakers, {}, ["01", "ravdess:04"], 0.0, 0) == ["ravdess:01", "ravdess:04"]
    with pytest.raises(ConfigError, match="data.holdout.speakers.*'07'"):
        choose_held_out(speakers, {}, ["07"], 0.0, 0)


@pytest.mark.parametrize("fused", ["never", "always"])
def test_cv_with_held_out_speakers_validates_only(tiny_cfg_factory, fused: str) -> None:
    """Per-fold Lightning loops and the fused loop alike: folds without a test split are not tested."""
    from ser.training.fit import fit_folds

    result = fit_folds(
        tiny_cfg_factory(
            *SIX,
            "data.holdout.fraction=0.34",
            "data.fold=all",
            f"trainer.fused={fused}",
            f"trainer.run_name=ho-cv-{fused}",
        )
    )
    assert result.metrics["execution"]["mode"] == ("fused" if fused == "always" else "sequential")
    held = set(result.metrics["protocol"]["held_out_speakers"])
    assert len(held) == 2
    for fold in result.folds:
        assert fold.test is None and fold.selection.best is not None
        assert not held & (set(fold.speakers["train"]) | set(fold.speakers["val"]))
        assert not (result.run_dir / f"fold_{fold.fold}" / "predictions.npz").exists()
    assert "test/uar" not in result.metrics["summary"]


def test_holdout_scores_the_held_out_speakers_once(tiny_cfg_factory, capsys) -> None:
    from ser.training.holdout import holdout_test

    cfg = tiny_cfg_factory(*SIX, "data.holdout.speakers=[s01,s06]", "trainer.run_name=ho-final")
    result = holdout_test(cfg)
    fold = result.folds[0]
    assert sorted(fold.speakers["test"]) == ["synthetic:s01", "synthetic:s06"]
    assert not {"synthetic:s01", "synthetic:s06"} & (set(fold.speakers["train"]) | set(fold.speakers["val"]))
    assert fold.test is not None and fold.sizes["test"] == 2 * 4 * 4  # 2 speakers x 4 labels x 4 each
    final = json.loads((result.run_dir / "metrics.json").read_text())["final_test"]
    assert final["held_out_speakers"] == ["synthetic:s01", "synthetic:s06"] and final["scored_before"] == 0
    assert (result.run_dir / final["config"]).is_file()
    again_cfg = tiny_cfg_factory(*SIX, "data.holdout.speakers=[s01,s06]", "trainer.run_name=ho-final-2")
    with pytest.raises(ConfigError, match="already scored.*--again"):
        holdout_test(again_cfg)
    other = tiny_cfg_factory(
        *SIX, "data.holdout.speakers=[s01,s06]", "optim.lr=0.003", "trainer.run_name=ho-3"
    )
    capsys.readouterr()
    holdout_test(other)
    assert "scored 1 time(s) before" in capsys.readouterr().err
    assert holdout_test(again_cfg, again=True).metrics["final_test"]["scored_before"] == 2


def test_holdout_needs_held_out_speakers(tiny_cfg_factory) -> None:
    from ser.training.holdout import holdout_test

    with pytest.raises(ConfigError, match="data.holdout"):
        holdout_test(tiny_cfg_factory())


def test_sweeps_share_features_only_with_the_same_held_out_speakers(tiny_cfg_factory) -> None:
    from ser.sweep.trials import prepared_key

    assert prepared_key(tiny_cfg_factory("data.holdout.fraction=0.25")) != prepared_key(tiny_cfg_factory())


@pytest.mark.slow
def test_nested_cv_chooses_inside_and_tests_outside(tiny_env, ray_session, tmp_path: Path) -> None:
    from ser.sweep.nested import run_nested
    from ser.sweep.spec import load_sweep

    body = {
        "name": "nested",
        "fixed": {
            "data.synthetic.speakers": 6,
            "data.synthetic.per_label": 4,
            "data.synthetic.labels": ["neutral", "happy", "sad", "angry"],
            "data.synthetic.duration": 1.0,
            "data.audio.duration": 1.0,
            "model.depth": 2,
            "model.channels": 8,
        },
        "space": {"optim.lr": {"grid": [0.01, 0.001]}},
        "scheduler": {"name": "fifo", "max_t": 2},
        "nested": {"outer_folds": 2, "inner_folds": 2},
        "wandb": {"enabled": False},
        "storage_path": str(tmp_path / "out"),
    }
    path = tmp_path / "nested.yaml"
    path.write_text(yaml.safe_dump(body))
    result = run_nested(load_sweep(path))
    report = json.loads((tmp_path / "out" / "nested" / "nested.json").read_text())
    outer_speakers = [set(r["test_speakers"]) for r in report["outer"]]
    assert len(outer_speakers) == 2 and set().union(*outer_speakers) == {
        f"synthetic:s0{i}" for i in range(1, 7)
    }
    for row, held in zip(report["outer"], outer_speakers):
        assert row["chosen"]["optim.lr"] in (0.01, 0.001) and 0 <= row["test"]["uar"] <= 1
        # no inner trial trained or validated on the outer fold's speakers, and none was tested at all
        inner = tmp_path / "out" / "nested" / f"outer_{row['outer_fold']}"
        for trial_metrics in inner.glob("run_trial_*/metrics.json"):
            for fold in json.loads(trial_metrics.read_text())["folds"]:
                assert not held & (set(fold["speakers"]["train"]) | set(fold["speakers"]["val"]))
                assert fold["test"] is None
        final = json.loads(
            (tmp_path / "out" / "nested" / f"outer_{row['outer_fold']}_final" / "metrics.json").read_text()
        )
        assert set(final["fold"]["speakers"]["test"]) == held
    assert report["summary"]["test/uar"]["n"] == 2 and not result["interrupted"]
