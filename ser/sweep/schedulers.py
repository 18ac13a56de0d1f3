"""Trial schedulers and searchers from a sweep file.

ASHA's rungs are placed strictly before the last epoch: a trial that reaches `max_t` epochs always ends
by itself, so its test split is scored (Ray's ASHA would stop it at its last report, before the test, and
with grace 2 / factor 2 / max_t 8 it even held a rung at epoch 8). `asha_milestones` is the one place the
rungs are computed: the scheduler uses it, and so do the rung plot and bench/sweep.py.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from ser.config import ConfigError

TIME_ATTR = "training_iteration"  # one iteration = one reported validation epoch
RUNG_KEY = "rung_score"  # reported with every epoch: what ASHA (and median stopping) compares at a rung
RUNG_METRICS = ("last", "best", "ema")


def rung_score(values: Sequence[float], how: str, mode: str = "max", alpha: float = 0.5) -> float | None:
    """The score a trial shows at a rung, from its per-epoch validation curve so far (`values`, oldest
    first): `last` the latest epoch, `best` the best epoch so far, `ema` an exponential moving average
    (weight `alpha` on the newest epoch), so one noisy epoch neither saves nor stops a trial."""
    curve = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if not curve:
        return None
    if how == "last":
        return curve[-1]
    if how == "best":
        return max(curve) if mode == "max" else min(curve)
    if how == "ema":
        smoothed = curve[0]
        for value in curve[1:]:
            smoothed = alpha * value + (1 - alpha) * smoothed
        return smoothed
    raise ValueError(f"rung metric must be one of {list(RUNG_METRICS)}, got {how!r}")


class RungTracker:
    """Adds `RUNG_KEY` to each epoch's report: the rung score of the trial's curve of `metric` so far."""

    def __init__(self, metric: str, mode: str, how: str = "last", alpha: float = 0.5) -> None:
        self.metric, self.mode, self.how, self.alpha = metric, mode, how, alpha
        self.curve: list[float] = []

    @classmethod
    def from_sweep(cls, sweep: Mapping[str, Any]) -> RungTracker:
        return cls(
            str(sweep.get("metric", "val/uar")),
            str(sweep.get("mode", "max")),
            str(sweep.get("rung_metric", "last")),
            float(sweep.get("rung_ema", 0.5)),
        )

    def add(self, report: Mapping[str, Any]) -> dict[str, Any]:
        value = report.get(self.metric)
        if isinstance(value, (int, float)):
            self.curve.append(float(value))
        score = rung_score(self.curve, self.how, self.mode, self.alpha)
        return {**report, RUNG_KEY: value if score is None else score}


def asha_milestones(grace_period: int, reduction_factor: float, max_t: int) -> list[int]:
    """The epochs at which ASHA compares trials: grace * factor^k, below max_t (ascending)."""
    if grace_period < 1 or reduction_factor <= 1 or max_t < 1:
        return []
    rungs = (
        int(math.log(max_t / grace_period) / math.log(reduction_factor) + 1) if max_t >= grace_period else 0
    )
    milestones = [grace_period * reduction_factor**k for k in range(rungs)]
    return sorted({int(m) for m in milestones if m < max_t})


def build_scheduler(sweep: Any):
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, MedianStoppingRule, TrialScheduler

    s = sweep.scheduler
    if s.name == "asha":

        class LastEpochASHA(ASHAScheduler):
            """ASHA with every rung before `max_t`, never stopping a trial at (or after) its last epoch."""

            def __init__(self) -> None:
                super().__init__(
                    time_attr=TIME_ATTR,
                    metric=RUNG_KEY,
                    mode=str(sweep.mode),
                    max_t=int(s.max_t),
                    grace_period=int(s.grace_period),
                    reduction_factor=float(s.reduction_factor),
                    stop_last_trials=False,
                )
                wanted = set(asha_milestones(int(s.grace_period), float(s.reduction_factor), int(s.max_t)))
                for bracket in self._brackets:
                    bracket._rungs = [(m, rec) for m, rec in bracket._rungs if int(m) in wanted]

            def on_trial_result(self, tune_controller, trial, result):
                if result.get(TIME_ATTR, 0) >= int(s.max_t):
                    return TrialScheduler.CONTINUE  # the trial finishes (and is tested) by itself
                return super().on_trial_result(tune_controller, trial, result)

        return LastEpochASHA()
    if s.name == "median":
        return MedianStoppingRule(
            time_attr=TIME_ATTR, metric=RUNG_KEY, mode=str(sweep.mode), grace_period=int(s.grace_period)
        )
    return FIFOScheduler()


def scheduler_milestones(scheduler: Any) -> list[int]:
    """The rungs a built scheduler really uses (ASHA), for tests and plots."""
    brackets = getattr(scheduler, "_brackets", None) or []
    return sorted({int(m) for bracket in brackets for m, _ in bracket._rungs})


def build_searcher(sweep: Any, space: dict[str, tuple[str, Any]]):
    from ray.tune.search import BasicVariantGenerator

    limit = int(sweep.max_concurrent_trials)
    if sweep.searcher.name == "optuna":
        if any(sampler == "grid" for sampler, _ in space.values()):
            raise ConfigError("invalid search space: 'grid' cannot be used with searcher optuna (use choice)")
        import optuna
        from ray.tune.search import ConcurrencyLimiter
        from ray.tune.search.optuna import OptunaSearch

        sampler = optuna.samplers.TPESampler(
            n_startup_trials=int(sweep.searcher.n_startup_trials), seed=int(sweep.seed)
        )
        # the searcher learns from the selection metric itself; the scheduler compares RUNG_KEY
        searcher = OptunaSearch(
            sampler=sampler, seed=int(sweep.seed), metric=str(sweep.metric), mode=str(sweep.mode)
        )
        return ConcurrencyLimiter(searcher, max_concurrent=limit) if limit > 0 else searcher
    return BasicVariantGenerator(random_state=int(sweep.seed), max_concurrent=limit)
