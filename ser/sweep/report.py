"""`ser sweep report RESULTS_DIR`: a finished sweep's conclusions in the terminal: the tied group and how
the best was chosen, the confirmation stage beside the search, the effect of each searched key with its
interval, the fANOVA importance table and what ASHA's rungs stopped within the noise.

Everything is read from the results directory (`stats.json`, written with the leaderboard); when the
sweep file named in `sweep.json` is still there, the directory's results are rebuilt first, so a sweep
summarised by an older `ser` gets its statistics too.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ser.config import ConfigError
from ser.sweep.conclusions import conclusion_lines


def tables(payload: dict[str, Any]) -> list[Any]:
    """Rich tables: one per searched key (mean and interval per value), importance, rung noise."""
    from rich.table import Table

    out = []
    metric = payload.get("metric", "metric")
    for key, effect in (payload.get("effects") or {}).items():
        table = Table(title=f"{key}: mean {metric} per value (interval over folds)", pad_edge=False)
        for column in (key, "trials", "mean", "interval"):
            table.add_column(column, justify="right")
        for p in effect.get("points", []):
            interval = "" if p.get("low") is None else f"{p['low']:.3f} - {p['high']:.3f}"
            value = f"{p['value']:.3g}" if isinstance(p["value"], float) else str(p["value"])
            table.add_row(value, str(p["trials"]), f"{p['mean']:.3f}", interval)
        out.append(table)
    weights = payload.get("importance")
    table = Table(title="hyperparameter importance (fANOVA over completed trials)", pad_edge=False)
    table.add_column("key")
    table.add_column("importance", justify="right")
    if isinstance(weights, dict) and "error" not in weights:
        for key, value in sorted(weights.items(), key=lambda kv: -kv[1]):
            table.add_row(key, f"{value:.2f}")
    else:
        reason = (
            weights.get("error")
            if isinstance(weights, dict)
            else "fewer than 3 completed trials or no key varied"
        )
        table.add_row("n/a", str(reason)[:60])
    out.append(table)
    noise = payload.get("rung_noise") or []
    if noise:
        table = Table(
            title=f"ASHA rungs ({payload.get('rung_metric')}): stopped trials within the noise",
            pad_edge=False,
        )
        for column in ("rung", "stopped", "survivors", "within noise of weakest survivor"):
            table.add_column(column, justify="right")
        for n in noise:
            within = "n/a" if n["within_noise"] is None else str(n["within_noise"])
            table.add_row(str(n["rung"]), str(n["stopped"]), str(n["survivors"]), within)
        out.append(table)
    return out


def _rebuild(root: Path, overrides: list[str]) -> bool:
    """Re-summarise the directory from its sweep file, when that file is still where the sweep ran it."""
    try:
        info = json.loads((root / "sweep.json").read_text())
    except (OSError, ValueError):
        return False
    source = info.get("source")
    if not source or not Path(source).is_file():
        return False
    from ser.sweep.run import report_sweep
    from ser.sweep.spec import load_sweep

    plan = load_sweep(source, [f"sweep.name={root.name}", f"sweep.storage_path={root.parent}", *overrides])
    report_sweep(plan)
    return True


def report_main(
    root: str | Path, overrides: list[str] | None = None, rebuild: bool = True, console=None
) -> dict:
    """Print a results directory's conclusions; returns the stats.json payload."""
    from rich.console import Console

    console = console or Console()
    root = Path(root)
    if not root.is_dir():
        raise ConfigError(f"no sweep results at {root}: give the folder holding leaderboard.csv")
    rebuilt = rebuild and _rebuild(root, list(overrides or []))
    stats_file = root / "stats.json"
    if not stats_file.is_file():
        raise ConfigError(f"no stats.json in {root}: not a sweep results folder (or written by an older ser)")
    payload = json.loads(stats_file.read_text())
    if not rebuilt:  # report_sweep printed the leaderboard and these lines already
        for line in conclusion_lines(payload):
            console.print(line)
    for table in tables(payload):
        console.print(table)
    plots = sorted(p.name for p in root.glob("effect_*.png"))
    if plots:
        console.print(f"effect plots: {', '.join(plots)} in {root}")
    return payload
