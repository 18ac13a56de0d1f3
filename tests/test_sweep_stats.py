"""The sweep's statistics against hand computations on fixed numbers (not against the code's own output)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as st

from ser.sweep.stats import (
    compare,
    fold_size_ratio,
    speaker_bootstrap,
    t_interval,
    tied_group,
    unweighted_accuracy,
)

A = [0.50, 0.60, 0.55, 0.62, 0.48, 0.58]  # six fold scores
B = [0.47, 0.58, 0.50, 0.61, 0.45, 0.52]  # the same folds, another config


def test_t_interval_by_hand():
    mean = sum(A) / 6  # 0.555
    sd = math.sqrt(sum((a - mean) ** 2 for a in A) / 5)
    t975 = st.t.ppf(0.975, 5)  # 2.5706
    got = t_interval(A)
    assert got.mean == pytest.approx(0.555)
    assert got.sd == pytest.approx(sd)
    assert got.low == pytest.approx(mean - t975 * sd / math.sqrt(6))
    assert got.high == pytest.approx(mean + t975 * sd / math.sqrt(6))
    # Nadeau-Bengio: the variance of a CV mean is sd^2 (1/n + n_val/n_train), wider than sd^2 / n
    nb = t_interval(A, ratio=0.25)
    assert nb.high - nb.mean == pytest.approx(t975 * sd * math.sqrt(1 / 6 + 0.25))
    assert nb.high - nb.low > got.high - got.low
    assert t_interval([0.5]).low is None  # one fold: no interval, not a zero-width one
    clipped = t_interval([0.0, 0.9], bounds=(0.0, 1.0))  # a UA interval stays within [0, 1]
    assert (clipped.low, clipped.high) == (0.0, 1.0) and clipped.mean == pytest.approx(0.45)


def test_correlated_t_test_by_nadeau_bengio_formula():
    diff = [b - a for a, b in zip(A, B)]  # -0.03 -0.02 -0.05 -0.01 -0.03 -0.06
    mean = sum(diff) / 6  # -0.0333
    var = sum((d - mean) ** 2 for d in diff) / 5 * (1 / 6 + 1 / 5)  # 6 folds: ratio 1/(k-1)
    scale = math.sqrt(var)
    got = compare(B, A, rope=0.01, ratio=1 / 5)
    assert got.mean == pytest.approx(mean)
    assert got.scale == pytest.approx(scale)
    assert got.df == 5
    assert got.p_worse == pytest.approx(st.t.cdf((-0.01 - mean) / scale, 5))
    assert got.p_better == pytest.approx(1 - st.t.cdf((0.01 - mean) / scale, 5))
    assert got.p_above == pytest.approx(1 - st.t.cdf(-mean / scale, 5))
    assert got.p_worse + got.p_equal + got.p_better == pytest.approx(1)
    assert got.p_worse > 0.95  # B is worse on every fold: distinguishable
    # the same test as baycomp's own k-fold form
    import baycomp

    assert baycomp.CorrelatedTTest.probs(np.array(A), np.array(B), rope=0.01) == pytest.approx(
        (got.p_worse, got.p_equal, got.p_better)
    )


def test_identical_scores_tie_and_a_clear_loser_does_not():
    same = compare(A, A, rope=0.01)
    assert (same.p_worse, same.p_equal, same.p_better, same.p_above) == (0.0, 1.0, 0.0, 0.5)
    noisy = compare([a + d for a, d in zip(A, [0.04, -0.05, 0.03, -0.04, 0.05, -0.03])], A)
    lost = compare([a - 0.2 for a in A], A)
    tied = tied_group({"best": None, "same": same, "noisy": noisy, "lost": lost})
    assert tied == {"best", "same", "noisy"}
    with pytest.raises(ValueError, match="same folds"):
        compare(A[:5], A)


def test_fold_size_ratio():
    sizes = [{"train": 480, "val": 120, "test": 120}, {"train": 400, "val": 100, "test": 100}]
    assert fold_size_ratio(sizes) == pytest.approx(0.25)


def test_unweighted_accuracy_by_hand():
    # class 0: 2 of 3 right, class 1: 1 of 1 right -> (2/3 + 1) / 2
    assert unweighted_accuracy([0, 0, 0, 1], [0, 0, 1, 1]) == pytest.approx(5 / 6)


def test_speaker_bootstrap_matches_the_enumerated_distribution():
    # speaker a: all right (UA 1); speaker b: 1 of 2 per class right (UA 0.5). Resampling 2 speakers gives
    # aa (1/4) -> 1.0, ab/ba (1/2) -> pooled 0.75, bb (1/4) -> 0.5: sd = sqrt(1/32) ~ 0.177
    y = [0, 1, 0, 0, 1, 1]
    pred = [0, 1, 0, 1, 1, 0]
    spk = ["a", "a", "b", "b", "b", "b"]
    got = speaker_bootstrap(y, pred, spk, n_boot=4000, seed=1)
    assert got.mean == pytest.approx(unweighted_accuracy(y, pred)) and got.n == 2
    assert (got.low, got.high) == (0.5, 1.0)
    assert got.sd == pytest.approx(math.sqrt(1 / 32), abs=0.01)
    assert speaker_bootstrap(y[:2], pred[:2], spk[:2]).low is None  # one speaker: nothing to resample
