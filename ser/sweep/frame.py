"""A sweep from Python: `ser.sweep(path_or_spec, **overrides)` runs it as `ser sweep` does and returns the
leaderboard as a pandas DataFrame (ser/api.py re-exports it; the `ser.sweep` package is callable)."""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas


def _sweep_file(spec: Mapping[str, Any], folder: Path) -> Path:
    """A sweep given as a mapping, written as the YAML file `load_sweep` reads; its `base` files are
    taken relative to the current directory (presets by name as usual)."""
    import yaml

    body = dict(spec)
    bases = body.get("base") or []
    if isinstance(bases, (str, Path)):
        bases = [bases]
    body["base"] = [str(Path(b).resolve()) if Path(b).is_file() else str(b) for b in bases]
    path = folder / f"{body.get('name', 'sweep')}.yaml"
    path.write_text(yaml.safe_dump(body, sort_keys=False))
    return path


def sweep_frame(
    path_or_spec: str | Path | Mapping[str, Any],
    *,
    wandb: bool | None = None,
    resume: bool = False,
    show_test: bool = False,
    **overrides: Any,
) -> pandas.DataFrame:
    """Run a sweep as `ser sweep FILE key=value ...` does and return its leaderboard (leaderboard.csv, one
    row per trial, best first by the sweep's metric on validation) as a pandas DataFrame; its
    `attrs["dir"]` is the sweep's folder (best_config.yaml, best/ checkpoint, plots).

    `path_or_spec`: a sweep YAML file, or the same content as a mapping. `overrides`: dotted keys, given
    as `**{"sweep.num_samples": 4, "data.root": "/data/ravdess"}` or with `__` for the dots
    (`sweep__num_samples=4`); `sweep.*` keys change the sweep, the others every trial's base config.
    `wandb=False` turns W&B off (`--no-wandb`). A nested sweep (`sweep.nested.outer_folds`) returns the
    outer folds' table instead (nested.csv).
    """
    import pandas as pd

    from ser.sweep.spec import _dotlist_value, load_sweep

    dotted = [f"{key.replace('__', '.')}={_dotlist_value(value)}" for key, value in overrides.items()]
    if isinstance(path_or_spec, Mapping):
        with tempfile.TemporaryDirectory(prefix="ser-sweep-") as folder:
            plan = load_sweep(_sweep_file(path_or_spec, Path(folder)), dotted)
        plan.source = None  # given from Python: there is no file to name in sweep.json
    else:
        plan = load_sweep(path_or_spec, dotted)
    if int(plan.sweep.nested.outer_folds) > 0:
        from ser.sweep.nested import run_nested

        outcome = run_nested(plan, resume=resume, wandb=wandb)
        table = Path(outcome["dir"]) / "nested.csv"
    else:
        from ser.sweep.run import run_sweep

        outcome = run_sweep(plan, resume=resume, wandb=wandb, show_test=show_test)
        table = Path(outcome["dir"]) / "leaderboard.csv"
    # an interrupted nested sweep has no nested.csv yet: the outer folds it finished
    board = pd.read_csv(table) if table.is_file() else pd.DataFrame(outcome.get("rows", []))
    board.attrs["dir"] = Path(outcome["dir"])
    board.attrs["interrupted"] = bool(outcome.get("interrupted"))
    return board
