"""How far a sweep's numbers can be trusted: pure functions of fold (or utterance) scores, no Ray, no torch.

- `t_interval`: a trial's mean selection value over its folds with a Student-t interval. The folds of one
  trial share most of their training speakers, so their scores are correlated and the plain t-interval is
  too narrow; `ratio` (validation / training size of a fold) applies Nadeau & Bengio's (2003) correction
  of the variance of a cross-validated mean, sd^2 (1/n + ratio), the one the correlated t-test uses.
- `compare`: the correlated Bayesian t-test for cross-validation (Corani & Benavoli 2015, `baycomp`) of a
  trial against the best trial on the same folds (the same speakers), with a region of practical
  equivalence (rope): P(worse), P(equivalent), P(better) beyond the rope, and P(better at all).
  Chosen over a paired bootstrap over speakers because a CV trial keeps one number per fold (2 speakers on
  dev RAVDESS): 6 numbers are too few to bootstrap, and the t-test's correction is the established fix
  for the folds' overlapping training sets.
- `tied_group`: the trials not distinguishable from the best: not worse than it beyond the rope with
  posterior probability `level`.
- `speaker_bootstrap`: a single-fold trial's validation UA with a bootstrap interval whose unit is the
  speaker (utterances of one speaker are not independent), so it says how little 2 speakers can tell.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats as st

DEFAULT_ROPE = 0.01  # one point of UA: differences smaller than this are practically equivalent
DEFAULT_LEVEL = 0.95


@dataclass(frozen=True)
class Interval:
    """A mean with its spread and a `level` interval; `n` values (folds, or speakers for a bootstrap)."""

    mean: float
    sd: float | None
    low: float | None
    high: float | None
    n: int
    level: float
    method: str

    def to_dict(self) -> dict[str, float | int | str | None]:
        return asdict(self)


@dataclass(frozen=True)
class Comparison:
    """Posterior of (trial - reference) over shared folds: Student-t(df, mean, scale)."""

    mean: float
    scale: float
    df: int
    rope: float
    p_worse: float  # P(trial < reference - rope)
    p_equal: float  # P(|difference| <= rope)
    p_better: float  # P(trial > reference + rope)
    p_above: float  # P(trial > reference): the leaderboard's "P(better than best)"

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


def _values(scores: Sequence[float]) -> np.ndarray:
    values = np.asarray([float(s) for s in scores], dtype=float)
    if values.size == 0 or not np.all(np.isfinite(values)):
        raise ValueError(f"scores must be a non-empty list of finite numbers, got {list(scores)!r}")
    return values


def fold_size_ratio(sizes: Sequence[Mapping[str, int]], split: str = "val") -> float:
    """Mean over folds of |split| / |train|: the Nadeau-Bengio correction's ratio for scores on `split`."""
    ratios = [s[split] / s["train"] for s in sizes if s.get("train") and s.get(split)]
    return float(np.mean(ratios)) if ratios else 0.0


def t_interval(
    scores: Sequence[float],
    level: float = DEFAULT_LEVEL,
    ratio: float = 0.0,
    bounds: tuple[float, float] | None = None,
) -> Interval:
    """mean +- t_{n-1}((1+level)/2) sd sqrt(1/n + ratio); ratio 0 is the textbook t-interval. `bounds`
    (e.g. (0, 1) for a UA) clips the interval to the values the metric can take."""
    values = _values(scores)
    n = values.size
    mean = float(values.mean())
    if n < 2:
        return Interval(mean, None, None, None, n, level, "single value: no interval")
    sd = float(values.std(ddof=1))
    half = float(st.t.ppf((1 + level) / 2, n - 1)) * sd * math.sqrt(1 / n + ratio)
    method = "t over folds, Nadeau-Bengio corrected" if ratio > 0 else "t over folds"
    low, high = mean - half, mean + half
    if bounds is not None:
        low, high = max(bounds[0], low), min(bounds[1], high)
    return Interval(mean, sd, low, high, n, level, method)


def compare(
    scores: Sequence[float], reference: Sequence[float], rope: float = DEFAULT_ROPE, ratio: float = 0.2
) -> Comparison:
    """The correlated Bayesian t-test of `scores` against `reference`, fold by fold (same folds, same order).

    The posterior of the mean difference is Student-t with n-1 degrees of freedom, location the mean
    difference and variance var(diff) (1/n + ratio) (Corani & Benavoli 2015, computed by `baycomp`'s
    Posterior; with ratio = 1/(k-1) this is `baycomp.CorrelatedTTest` on k folds)."""
    from baycomp.single import Posterior

    x, y = _values(reference), _values(scores)
    if x.size != y.size:
        raise ValueError(f"paired scores need the same folds: {y.size} values against {x.size}")
    if x.size < 2:
        raise ValueError("a paired comparison needs at least 2 folds")
    diff = y - x
    n = diff.size
    mean = float(diff.mean())
    var = float(diff.var(ddof=1)) * (1 / n + ratio)
    posterior = Posterior(mean, var, n - 1, rope)
    p_worse, p_equal, p_better = (
        [float(p) for p in posterior.probs()] if rope > 0 else [*_no_rope(posterior.probs())]
    )
    if var == 0:
        p_above = 1.0 if mean > 0 else (0.5 if mean == 0 else 0.0)
    else:
        p_above = float(1 - st.t.cdf(0, n - 1, mean, math.sqrt(var)))
    return Comparison(mean, math.sqrt(var), n - 1, rope, p_worse, p_equal, p_better, p_above)


def _no_rope(probs: tuple[float, float]) -> tuple[float, float, float]:
    left, right = probs
    return float(left), 0.0, float(right)


def tied_group(comparisons: Mapping[str, Comparison | None], level: float = DEFAULT_LEVEL) -> set[str]:
    """Trials whose P(worse than the best beyond the rope) stays below `level` (the best itself: None)."""
    return {key for key, c in comparisons.items() if c is None or c.p_worse < level}


def unweighted_accuracy(y_true: Sequence[int], y_pred: Sequence[int]) -> float:
    """UA: the mean over the classes present in `y_true` of their recall."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    classes = np.unique(y_true)
    return float(np.mean([np.mean(y_pred[y_true == c] == c) for c in classes]))


def speaker_bootstrap(
    y_true: Sequence[int],
    y_pred: Sequence[int],
    speakers: Sequence[str],
    level: float = DEFAULT_LEVEL,
    n_boot: int = 2000,
    seed: int = 0,
) -> Interval:
    """UA of the pooled utterances with a percentile interval from resampling whole speakers with
    replacement (each draw pools the utterances of the drawn speakers, a speaker drawn twice counts twice)."""
    y_true, y_pred, speakers = np.asarray(y_true), np.asarray(y_pred), np.asarray(speakers)
    point = unweighted_accuracy(y_true, y_pred)
    names = np.unique(speakers)
    if names.size < 2:
        return Interval(point, None, None, None, int(names.size), level, "one speaker: no interval")
    rows = [np.flatnonzero(speakers == s) for s in names]
    rng = np.random.default_rng(seed)
    draws = np.empty(n_boot)
    for b in range(n_boot):
        pick = np.concatenate([rows[i] for i in rng.integers(0, names.size, names.size)])
        draws[b] = unweighted_accuracy(y_true[pick], y_pred[pick])
    low, high = np.quantile(draws, [(1 - level) / 2, (1 + level) / 2])
    method = f"bootstrap over {names.size} speakers"
    return Interval(point, float(draws.std(ddof=1)), float(low), float(high), int(names.size), level, method)


def paired_speaker_bootstrap(
    y_true: Sequence[int],
    pred: Sequence[int],
    reference_pred: Sequence[int],
    speakers: Sequence[str],
    rope: float = DEFAULT_ROPE,
    n_boot: int = 2000,
    seed: int = 0,
) -> Comparison:
    """Two single-fold trials on the same validation utterances: the UA difference (pred - reference) over
    speaker resamples (both scored on the same draw); its probabilities are the fractions of the draws."""
    y_true, speakers = np.asarray(y_true), np.asarray(speakers)
    pred, reference_pred = np.asarray(pred), np.asarray(reference_pred)
    names = np.unique(speakers)
    rows = [np.flatnonzero(speakers == s) for s in names]
    rng = np.random.default_rng(seed)
    diffs = np.empty(n_boot)
    for b in range(n_boot):
        pick = np.concatenate([rows[i] for i in rng.integers(0, names.size, names.size)])
        yt = y_true[pick]
        diffs[b] = unweighted_accuracy(yt, pred[pick]) - unweighted_accuracy(yt, reference_pred[pick])
    mean = unweighted_accuracy(y_true, pred) - unweighted_accuracy(y_true, reference_pred)
    worse, better = float(np.mean(diffs < -rope)), float(np.mean(diffs > rope))
    return Comparison(
        float(mean),
        float(diffs.std(ddof=1)),
        int(names.size) - 1,
        rope,
        worse,
        1 - worse - better,
        better,
        float(np.mean(diffs > 0) + 0.5 * np.mean(diffs == 0)),
    )
