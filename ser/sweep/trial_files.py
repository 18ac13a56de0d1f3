"""trials/<trial_id>.json: one small file per trial for the sweep page (its curves and config on a click).

Each file holds what a person compares trials by: the searched values, the config keys that differ from
the sweep's base recipe (its base files and fixed keys), the fixed keys, the resolved config, and the
fold-mean train/val metrics of every reported epoch (epochs numbered from 1, Tune's `training_iteration`,
so `best_epoch` is the leaderboard's). The web UI reads these through its sandboxed file route; nothing
here imports Ray or torch.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from ser.data.paths import write_atomic

TRIALS_DIR = "trials"
SCHEMA = 1
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def trial_file_name(trial_id: str) -> str:
    """The file name of a trial's record: its id with anything but [A-Za-z0-9._-] replaced."""
    return f"{_SAFE.sub('_', str(trial_id))[:120] or 'trial'}.json"


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts -> {dotted.key: leaf}; lists stay leaves (a conv stack's channels is one value)."""
    if not isinstance(tree, Mapping):
        return {prefix: tree}
    out: dict[str, Any] = {}
    for key, value in tree.items():
        dotted = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, dotted))
        else:
            out[dotted] = value
    return out


def config_changes(base: Mapping[str, Any], cfg: Mapping[str, Any], ignore: Sequence[str] = ()) -> list[dict]:
    """Every dotted key whose value differs between `base` and `cfg`: [{key, base, value}], sorted by key.
    A key only one side has is reported with None on the other."""
    flat_base, flat_cfg = flatten(base), flatten(cfg)
    changes = []
    for key in sorted(set(flat_base) | set(flat_cfg)):
        if any(key == i or key.startswith(f"{i}.") for i in ignore):
            continue
        before, after = flat_base.get(key), flat_cfg.get(key)
        if before != after:
            changes.append({"key": key, "base": before, "value": after})
    return changes


def finite_or_none(value: Any) -> float | None:
    """A float, or None for what is missing, not a number, NaN or infinite (a cell left empty)."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def epoch_series(history: Sequence[Mapping[str, Any]]) -> list[dict[str, float]]:
    """Tune's per-epoch results -> [{epoch (1-based), train/..., val/...}]: fold means only (no _sd,
    no per-fold copies, no Tune bookkeeping)."""
    series = []
    for h in history:
        epoch = h.get("training_iteration")
        if epoch is None:
            continue
        row: dict[str, float] = {"epoch": int(epoch)}
        for key, value in h.items():
            if str(key).startswith(("train/", "val/")) and not str(key).endswith("_sd"):
                number = finite_or_none(value)
                if number is not None:
                    row[str(key)] = number
        series.append(row)
    return series


def trial_record(
    row: Mapping[str, Any],
    keys: Sequence[str],
    metric: str,
    mode: str,
    base: DictConfig,
    cfg: DictConfig | None,
    fixed: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The JSON a trial's file holds; `cfg` is the trial's full config (None when it cannot be built),
    `fixed` the sweep file's fixed keys (already in `base`, so not among the changes)."""
    base_tree = OmegaConf.to_container(base, resolve=True)
    cfg_tree = OmegaConf.to_container(cfg, resolve=True) if cfg is not None else None
    return {
        "schema": SCHEMA,
        "trial_id": str(row["trial_id"]),
        "status": row.get("status"),
        "metric": metric,
        "mode": mode,
        "best": row.get("best"),
        "best_epoch": row.get("best_epoch"),
        "epochs": row.get("epochs"),
        "searched": {k: row.get(k) for k in keys if k in row},
        "fixed": dict(fixed or {}),
        "changes": config_changes(base_tree, cfg_tree, ignore=("trainer.progress_bar",)) if cfg_tree else [],
        "config": OmegaConf.to_yaml(cfg, resolve=True) if cfg is not None else None,
        "history": epoch_series(row.get("history") or []),
    }


def _clean(value: Any) -> Any:
    """NaN and infinities -> None: the browser's JSON.parse rejects them."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def write_trial_files(records: Sequence[Mapping[str, Any]], out_dir: Path) -> Path:
    """trials/<id>.json for every record; returns the folder."""
    folder = out_dir / TRIALS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    for record in records:
        text = json.dumps(_clean(record), indent=1, default=str, allow_nan=False)
        write_atomic(folder / trial_file_name(record["trial_id"]), text)  # never half a file
    return folder
