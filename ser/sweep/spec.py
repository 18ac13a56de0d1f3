"""Sweep files -> a validated `SweepConfig`, the trials' base config and a Ray Tune search space.

The search space is data: dotted config keys mapped to `choice`, `grid`, `uniform`, `loguniform`,
`randint` or `quniform`. A conditional sub-space is a `choice` whose options are mappings, e.g.

    model.name:
      choice:
        sentan: {model.depth: {choice: [1, 2]}}
        cnn_lstm: {model.lstm_hidden: {choice: [64, 128]}}

Every key (searched, fixed, or in a sub-space) is checked against the config schema when the file is
loaded, and every listed value is type-checked, so a typo fails before any trial starts.
"""

from __future__ import annotations

import itertools
import math
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from ser.config import (
    CHOICES,
    SWEEP_CHOICES,
    ConfigError,
    SweepConfig,
    load_config,
    merge_into,
    monitor_mode,
    parse_overrides,
    read_yaml,
    validate,
)

SAMPLERS = ("choice", "grid", "uniform", "loguniform", "randint", "quniform")
COND_SEP = "::"  # "model.name=sentan::model.depth": applied only when model.name == sentan


@dataclass
class SweepPlan:
    """A loaded sweep: its settings, the trials' base config and the flat search space spec."""

    sweep: DictConfig  # SweepConfig
    base: DictConfig  # RootConfig with base files + fixed + user overrides applied
    space: dict[str, tuple[str, Any]] = field(default_factory=dict)  # flat key -> (sampler, args)
    source: Path | None = None
    overrides: list[str] = field(default_factory=list)  # as given on the command line (sweep.json keeps them)

    @property
    def searched_keys(self) -> list[str]:
        return [k.split(COND_SEP)[-1] if COND_SEP in k else k for k in self.space]


def _plain(value: Any) -> Any:
    if isinstance(value, (DictConfig, ListConfig)):
        return OmegaConf.to_container(value, resolve=True)
    return value


def _check_key(schema: DictConfig, key: str, where: str) -> None:
    node: Any = schema  # any root config: only its keys are read
    for part in key.split("."):
        if not isinstance(node, DictConfig) or part not in node:
            raise ConfigError(f"invalid config key '{key}' in {where}: not in the config schema")
        node = node[part]


def _check_value(base: DictConfig, key: str, value: Any, where: str) -> None:
    """The value's type and the same range and enumeration checks as `ser fit`, on top of the base."""
    try:
        cfg = merge_into(base, OmegaConf.from_dotlist([f"{key}={_dotlist_value(value)}"]), where)
        validate(cfg)
    except ConfigError as exc:
        message = str(exc) if where in str(exc) else f"{exc} (in {where})"
        raise ConfigError(f"{message} (value {value!r})") from None


def _dotlist_value(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(str(v) for v in value) + "]"
    if value is None:
        return "null"
    return str(value)


def _parse_domain(base: DictConfig, key: str, spec: Any, where: str, out: dict, prefix: str = "") -> None:
    if not isinstance(spec, dict) or len(spec) != 1:
        raise ConfigError(
            f"invalid search space for '{key}' in {where}: give exactly one of {list(SAMPLERS)}, e.g. "
            f"{{choice: [a, b]}}; got {spec!r}"
        )
    sampler, args = next(iter(spec.items()))
    if sampler not in SAMPLERS:
        raise ConfigError(
            f"invalid search space for '{key}' in {where}: unknown sampler '{sampler}' ({list(SAMPLERS)})"
        )
    _check_key(base, key, where)
    flat_key = f"{prefix}{key}"
    if sampler in ("choice", "grid") and isinstance(args, dict):
        if prefix:
            raise ConfigError(f"invalid search space for '{key}' in {where}: conditional spaces cannot nest")
        if sampler == "grid":
            raise ConfigError(
                f"invalid search space for '{key}' in {where}: a conditional space needs choice"
            )
        for option, sub in args.items():
            _check_value(base, key, option, where)
            chosen = merge_into(base, OmegaConf.from_dotlist([f"{key}={_dotlist_value(option)}"]), where)
            for sub_key, sub_spec in (sub or {}).items():
                _parse_domain(chosen, sub_key, sub_spec, where, out, prefix=f"{key}={option}{COND_SEP}")
        out[flat_key] = ("choice", list(args))
        return
    if sampler in ("choice", "grid"):
        if not isinstance(args, list) or not args:
            raise ConfigError(
                f"invalid search space for '{key}' in {where}: {sampler} needs a non-empty list"
            )
        for value in args:
            _check_value(base, key, value, where)
    else:
        need = 3 if sampler == "quniform" else 2
        if (
            not isinstance(args, list)
            or len(args) != need
            or not all(isinstance(a, (int, float)) for a in args)
        ):
            raise ConfigError(f"invalid search space for '{key}' in {where}: {sampler} needs {need} numbers")
        if args[0] >= args[1]:
            raise ConfigError(f"invalid search space for '{key}' in {where}: {sampler} low must be < high")
        if sampler == "loguniform" and args[0] <= 0:
            raise ConfigError(f"invalid search space for '{key}' in {where}: loguniform needs low > 0")
        ends = (int(args[0]), int(args[1]) - 1) if sampler == "randint" else (args[0], args[1])
        for end in ends:  # both ends of the range pass the same checks as a `ser fit` value
            _check_value(base, key, end, where)
    out[flat_key] = (sampler, args)


def _check_sweep(sweep: DictConfig, path: Path) -> None:
    """The sweep file's own settings: enumerations and the numbers a scheduler or Ray needs."""

    def bad(key: str, problem: str) -> None:
        raise ConfigError(f"invalid sweep key '{key}' in {path}: {problem}")

    name = str(sweep.name)
    if not name.strip() or name in (".", "..") or any(sep in name for sep in ("/", "\\", "\0")):
        # the name is one folder under storage_path: a separator would put the sweep somewhere else
        bad("name", f"{name!r} must be a plain folder name (no '/', '\\', '.' or '..'); e.g. name: my_sweep")
    for key, allowed in SWEEP_CHOICES.items():
        if OmegaConf.select(sweep, key) not in allowed:
            bad(key, f"{OmegaConf.select(sweep, key)!r} is not one of {list(allowed)}")
    reported = CHOICES["trainer.monitor"]
    if sweep.metric not in reported:
        bad("metric", f"{sweep.metric!r} is not a metric trials report; one of {list(reported)}")
    if sweep.mode != monitor_mode(sweep.metric):
        bad("mode", f"{sweep.metric} is ranked with mode {monitor_mode(sweep.metric)!r}, not {sweep.mode!r}")
    s = sweep.scheduler
    checks = [
        ("num_samples", sweep.num_samples >= 1, ">= 1"),
        ("scheduler.max_t", s.max_t >= 1, ">= 1 (epochs per trial)"),
        (
            "scheduler.grace_period",
            s.name == "fifo" or 1 <= s.grace_period <= s.max_t,
            f"between 1 and max_t ({s.max_t})",
        ),
        ("scheduler.reduction_factor", s.reduction_factor > 1, "> 1"),
        ("resources.cpu", sweep.resources.cpu > 0, "> 0 (CPUs per trial, fractions allowed)"),
        ("resources.gpu", sweep.resources.gpu >= 0, ">= 0"),
        ("resources.workers", sweep.resources.workers >= 1, ">= 1 (DDP workers per trial)"),
        ("cv.folds", sweep.cv.folds >= 0, ">= 0"),
        ("max_concurrent_trials", sweep.max_concurrent_trials >= 0, ">= 0 (0: as resources allow)"),
        ("keep_checkpoints", sweep.keep_checkpoints >= 1, ">= 1"),
        ("searcher.n_startup_trials", sweep.searcher.n_startup_trials >= 0, ">= 0"),
        ("rung_ema", 0 < sweep.rung_ema <= 1, "in (0, 1] (the newest epoch's weight)"),
        ("confirm.top_k", sweep.confirm.top_k >= 0, ">= 0 (0: no confirmation stage)"),
        ("confirm.seeds", sweep.confirm.seeds >= 1, ">= 1 (new seeds per confirmed config)"),
        ("stats.rope", 0 <= sweep.stats.rope < 1, "in [0, 1) (a difference of the metric)"),
        ("stats.level", 0 < sweep.stats.level < 1, "in (0, 1)"),
    ]
    for key, ok, want in checks:
        if not ok:
            bad(key, f"{OmegaConf.select(sweep, key)} must be {want}")
    nested = sweep.nested
    if nested.outer_folds != 0 and (nested.outer_folds < 2 or nested.inner_folds < 2):
        bad("nested", "outer_folds and inner_folds must be at least 2 (outer_folds 0 turns nested CV off)")
    if nested.outer_folds and sweep.resources.workers > 1:
        bad(
            "nested", "nested CV trains CV trials; it cannot be combined with DDP workers (resources.workers)"
        )
    if sweep.resources.workers > 1 and sweep.cv.folds > 0:
        bad(
            "resources.workers",
            "DDP workers (workers > 1) and cv.folds > 0 cannot be combined; use one of them",
        )


def load_sweep(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> SweepPlan:
    """Read a sweep file; `sweep.x=...` overrides change the sweep, other `key=value` the trials' base.

    `base` entries are presets by name (`ravdess`, `model/sentan`) or YAML files relative to the sweep
    file. Every fixed and searched value is checked against the schema and the config's range checks on
    top of the base, so an impossible trial fails here, before any trial starts."""
    path = Path(path)
    raw = read_yaml(path)
    sweep = merge_into(OmegaConf.structured(SweepConfig), raw, str(path))
    sweep_over = [o[len("sweep.") :] for o in overrides if o.startswith("sweep.")]
    base_over = [o for o in overrides if not o.startswith("sweep.")]
    sweep = merge_into(sweep, parse_overrides(sweep_over), "overrides")
    _check_sweep(sweep, path)
    from ser.config import resolve_config_file

    base_files = [resolve_config_file(b, path.parent) for b in sweep.base]
    unfixed = load_config(base_files, base_over)
    fixed = [f"{k}={_dotlist_value(_plain(v))}" for k, v in (sweep.fixed or {}).items()]
    for i, (key, value) in enumerate((sweep.fixed or {}).items()):
        _check_key(unfixed, key, f"{path} (fixed)")
        # each value checked with the other fixed values in place: keys that constrain each other (the
        # ssl family and its encoder) pass together, and a bad value is still named on its own
        others = merge_into(unfixed, OmegaConf.from_dotlist(fixed[:i] + fixed[i + 1 :]), f"{path} (fixed)")
        _check_value(others, key, _plain(value), f"{path} (fixed)")
    base = load_config(base_files, [*fixed, *base_over])
    base.trainer.max_epochs = int(sweep.scheduler.max_t)
    base.trainer.monitor = str(sweep.metric)  # one selection metric: checkpoints, the sweep, the leaderboard
    space: dict[str, tuple[str, Any]] = {}
    for key, spec in (_plain(sweep.space) or {}).items():
        _parse_domain(base, key, spec, str(path), space)
    if int(base.model.ensemble) > 1 or any(k.split(COND_SEP)[-1] == "model.ensemble" for k in space):
        raise ConfigError(
            f"invalid config key 'model.ensemble' in {path}: ensembles are for final runs (ser fit, "
            "ser holdout), not sweep trials (their members train one after another); sweep the single model"
        )
    return SweepPlan(sweep=sweep, base=base, space=space, source=path, overrides=list(overrides))


def count_trials(plan: SweepPlan) -> int:
    """How many trials the sweep runs: num_samples times the grid's size."""
    grid = math.prod(len(args) for sampler, args in plan.space.values() if sampler == "grid")
    return int(plan.sweep.num_samples) * grid


GRID_POINT = "grid_point"  # a trial's values of every `grid` key, as one point of the shuffled grid


def grid_points(space: dict[str, tuple[str, Any]], seed: int) -> list[dict[str, Any]]:
    """Every combination of the `grid` keys, in a random order fixed by the sweep seed.

    Ray expands several grid_search keys in nested order, so neighbouring trials differ in one value and
    ASHA, which lets the first trial at each rung go on unconditionally, sees one corner of the grid at
    its first rungs. A shuffled order gives its early decisions a spread of the grid (bench/sweep.py).
    """
    keys = [key for key, (sampler, _) in space.items() if sampler == "grid"]
    points = [dict(zip(keys, values)) for values in itertools.product(*(space[k][1] for k in keys))]
    random.Random(seed).shuffle(points)
    return points if keys else []


def to_tune_space(space: dict[str, tuple[str, Any]], seed: int = 0) -> dict[str, Any]:
    """Flat spec -> Ray Tune domains (keys stay flat: dotted, with conditional prefixes); all `grid`
    keys become one grid over shuffled points (`GRID_POINT`), expanded again by `trial_overrides`."""
    from ray import tune

    makers = {
        "choice": lambda a: tune.choice(a),
        "uniform": lambda a: tune.uniform(a[0], a[1]),
        "loguniform": lambda a: tune.loguniform(a[0], a[1]),
        "randint": lambda a: tune.randint(int(a[0]), int(a[1])),
        "quniform": lambda a: tune.quniform(a[0], a[1], a[2]),
    }
    out = {key: makers[sampler](args) for key, (sampler, args) in space.items() if sampler != "grid"}
    points = grid_points(space, seed)
    if points:
        out[GRID_POINT] = tune.grid_search(points)
    return out


def flat_params(params: dict[str, Any]) -> dict[str, Any]:
    """Sampled params with a grid point expanded into its dotted keys."""
    point = params.get(GRID_POINT)
    rest = {k: v for k, v in params.items() if k != GRID_POINT}
    return {**rest, **dict(point)} if isinstance(point, dict) else rest


def trial_overrides(base: DictConfig, params: dict[str, Any]) -> dict[str, Any]:
    """The config values a trial's sampled params set: conditional keys only where their option won."""
    chosen: dict[str, Any] = {}
    params = flat_params(params)
    for key, value in params.items():
        if COND_SEP in key:
            condition, real_key = key.split(COND_SEP, 1)
            cond_key, cond_value = condition.split("=", 1)
            if str(params.get(cond_key, OmegaConf.select(base, cond_key))) != cond_value:
                continue
            chosen[real_key] = value
        else:
            chosen[key] = value
    return chosen


def apply_params(base: DictConfig, params: dict[str, Any]) -> DictConfig:
    """The trial's full config: base + sampled params (type-checked again)."""
    cfg = base.copy()
    dotlist = [f"{k}={_dotlist_value(v)}" for k, v in trial_overrides(base, params).items()]
    cfg = merge_into(cfg, OmegaConf.from_dotlist(dotlist), "trial parameters")
    validate(cfg)
    return cfg
