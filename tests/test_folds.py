"""Speaker-independent folds: invariants, gender balance, determinism, LOSO and the few-speaker case."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from ser.data.folds import (
    Fold,
    FoldInvariantError,
    check_disjoint,
    parse_fold,
    speaker_folds,
    split_utterances,
)
from ser.data.types import Utterance


def ravdess_like(n: int) -> tuple[list[str], dict[str, str]]:
    """RAVDESS numbering: odd actors are male, even actors female."""
    speakers = [f"Actor_{i:02d}" for i in range(1, n + 1)]
    return speakers, {s: ("m" if i % 2 else "f") for i, s in enumerate(speakers, start=1)}


def assert_invariant(folds: list[Fold], speakers: list[str]) -> None:
    tested = Counter()
    for f in folds:
        parts = [f.train, f.val, f.test]
        flat = [s for p in parts for s in p]
        assert len(flat) == len(set(flat)), f"speaker repeated in fold {f.index}"
        assert set(flat) == set(speakers)
        assert f.train and f.test
        tested.update(f.test)
    assert tested == Counter(speakers)


def test_invariant_over_many_configurations():
    cases = 0
    for n in (2, 3, 4, 5, 7, 10, 12, 24, 31):
        speakers = [f"s{i}" for i in range(n)]
        genders = {s: ("m", "f", None)[i % 3] for i, s in enumerate(speakers)}
        for k in (0, 2, 3, 4, 6, 10, n, n + 3):
            for val_folds in (0, 1, 2):
                for seed in (0, 1, 7):
                    loso = k == 0 or k >= n
                    if not loso and val_folds > k - 2:
                        with pytest.raises(ValueError, match="val_folds"):
                            speaker_folds(speakers, k, val_folds, seed, genders)
                        continue
                    folds = speaker_folds(speakers, k, val_folds, seed, genders)
                    assert len(folds) == (n if loso else k)
                    assert [f.index for f in folds] == list(range(len(folds)))
                    assert_invariant(folds, speakers)
                    sizes = [len(f.test) for f in folds]
                    assert max(sizes) - min(sizes) <= 1
                    cases += 1
    assert cases > 400


def test_ravdess_24_actors_six_folds_are_gender_balanced():
    speakers, genders = ravdess_like(24)
    for seed in range(5):
        folds = speaker_folds(speakers, 6, seed=seed, genders=genders)
        assert len(folds) == 6
        for f in folds:
            assert len(f.test) == 4
            assert Counter(genders[s] for s in f.test) == {"m": 2, "f": 2}
            assert len(f.val) == 4 and len(f.train) == 16
            assert not f.warnings
        # validation of fold i is the test group of fold i + 1
        assert all(folds[i].val == folds[(i + 1) % 6].test for i in range(6))


def test_twelve_actor_dev_set_gives_one_male_one_female_per_fold():
    speakers, genders = ravdess_like(12)
    folds = speaker_folds(speakers, 6, seed=3, genders=genders)
    for f in folds:
        assert sorted(genders[s] for s in f.test) == ["f", "m"]


def test_without_genders_groups_are_still_balanced_in_size():
    folds = speaker_folds([f"s{i}" for i in range(10)], 4)
    assert sorted(len(f.test) for f in folds) == [2, 2, 3, 3]


def test_deterministic_and_independent_of_input_order():
    speakers, genders = ravdess_like(24)
    a = speaker_folds(speakers, 6, seed=11, genders=genders)
    shuffled = list(np.random.default_rng(0).permutation(speakers))
    b = speaker_folds(shuffled, 6, seed=11, genders=dict(reversed(list(genders.items()))))
    assert a == b
    assert speaker_folds(speakers + speakers[:3], 6, seed=11, genders=genders) == a  # repeats ignored
    c = speaker_folds(speakers, 6, seed=12, genders=genders)
    assert [f.test for f in a] != [f.test for f in c]


def test_leave_one_speaker_out():
    speakers = ["c", "a", "d", "b"]
    for k in (0, 4, 9):
        folds = speaker_folds(speakers, k)
        assert [f.test for f in folds] == [("a",), ("b",), ("c",), ("d",)]
        assert folds[0].val == ("b",) and folds[0].train == ("c", "d")
        assert folds[3].val == ("a",)


def test_two_speakers_have_no_validation_speaker_and_warn():
    folds = speaker_folds(["tess_OAF", "tess_YAF"], 0)
    assert len(folds) == 2
    for f in folds:
        assert f.val == ()
        assert len(f.train) == 1 and len(f.test) == 1
        assert any("NOT speaker-independent" in w for w in f.warnings)
        assert any("val_folds" in w for w in f.warnings)


def test_split_utterances_speaker_validation():
    speakers, genders = ravdess_like(12)
    fold = speaker_folds(speakers, 6, genders=genders)[2]
    utts = [Utterance(f"u{i}", f"/x/{i}.wav", speakers[i % 12], "happy", "ravdess") for i in range(60)]
    train, val, test = split_utterances(utts, fold)
    assert train.dtype == np.int64 and len(train) + len(val) + len(test) == 60
    assert {utts[i].speaker for i in test} == set(fold.test)
    assert {utts[i].speaker for i in val} == set(fold.val)
    assert {utts[i].speaker for i in train} == set(fold.train)
    assert list(train) == sorted(train)


def test_split_utterances_stratified_when_no_validation_speaker():
    fold = speaker_folds(["A", "B"], 0)[0]  # test A, train B
    labels = ["angry"] * 40 + ["sad"] * 20 + ["calm"] * 1
    speakers = ["B"] * len(labels) + ["A"] * 10
    labels = labels + ["angry"] * 10
    train, val, test = split_utterances(speakers, fold, labels=labels, seed=5)
    assert len(test) == 10 and all(speakers[i] == "A" for i in test)
    assert Counter(labels[i] for i in val) == {"angry": 6, "sad": 3}  # 15% per label, singleton stays
    assert len(train) == 61 - 9
    again = split_utterances(speakers, fold, labels=labels, seed=5)
    assert all(np.array_equal(x, y) for x, y in zip((train, val, test), again, strict=True))
    other = split_utterances(speakers, fold, labels=labels, seed=6)
    assert not np.array_equal(val, other[1])


def test_split_utterances_rejects_unknown_speaker():
    fold = speaker_folds(["A", "B", "C"], 0)[0]
    with pytest.raises(ValueError, match="'Z'"):
        split_utterances(["A", "Z"], fold)


def test_check_disjoint_detects_leak_and_missing():
    check_disjoint({"train": ["a"], "val": ["b"], "test": ["c"]}, ["a", "b", "c"])
    with pytest.raises(FoldInvariantError, match="'a' is in both train and test"):
        check_disjoint({"train": ["a"], "val": [], "test": ["a"]})
    with pytest.raises(FoldInvariantError, match="missing"):
        check_disjoint({"train": ["a"], "val": [], "test": ["b"]}, ["a", "b", "c"])


@pytest.mark.parametrize(
    ("speakers", "k", "val_folds", "match"),
    [
        (["a"], 0, 1, "at least 2 speakers"),
        ([], 3, 1, "at least 2 speakers"),
        (list("abcdef"), 1, 0, "data.folds=1"),
        (list("abcdef"), -2, 1, "data.folds=-2"),
        (list("abcdef"), 3, 2, "leaves no training fold"),
        (list("abcdef"), 2, 1, "leaves no training fold"),
        (list("abcdef"), 3, -1, "val_folds=-1"),
    ],
)
def test_errors(speakers, k, val_folds, match):
    with pytest.raises(ValueError, match=match):
        speaker_folds(speakers, k, val_folds)


def test_parse_fold():
    assert parse_fold("all", 6) == [0, 1, 2, 3, 4, 5]
    assert parse_fold("3", 6) == [3]
    assert parse_fold(0, 2) == [0]
    for bad in ("6", "-1"):
        with pytest.raises(ValueError, match="data.fold"):
            parse_fold(bad, 6)
    with pytest.raises(ValueError, match="data.fold"):
        parse_fold("first", 6)
