"""Reading a sweep results directory for the web UI: leaderboard, summary, plots; never outside the folder.

The directory is whatever `python -m ser.sweep` wrote (leaderboard.csv, best_config.yaml, sweep.json, plots,
best/..., trials/<id>.json with each trial's curves and config). Any of these may be missing (an interrupted
or failed sweep), so every reader returns what exists and lists what does not. Columns are taken from the
CSV header as they are, so a new column shows up in the UI without code changes.
"""

from __future__ import annotations

import csv
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ser.sweep.trial_files import TRIALS_DIR, trial_file_name

# Files the sweep page shows, in order; metric_vs_<key>.png are found by pattern.
PLOTS_BEFORE = [("parallel_coordinates.png", "Parallel coordinates")]
PLOTS_AFTER = [
    ("asha_rungs.png", "ASHA rungs"),
    ("best/confusion_matrix.png", "Best trial: confusion matrix"),
    ("best/curves.png", "Best trial: training curves"),
]
EXPECTED = ["leaderboard.csv", "best_config.yaml", "sweep.json", "best/checkpoint.ckpt"]
SERVABLE_SUFFIXES = {".png", ".svg", ".jpg", ".jpeg", ".csv", ".yaml", ".yml", ".json", ".txt"}


@dataclass
class SweepView:
    """Everything the sweep page and `/api/sweep` show."""

    root: Path
    meta: dict[str, Any]
    columns: list[str]
    rows: list[dict[str, Any]]
    metric_column: str | None
    best_index: int | None
    best_config: str | None
    plots: list[tuple[str, str]]  # (relative path, caption)
    wide: set[str] = field(default_factory=set)  # plots much wider than tall: shown across two columns
    missing: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    trials: dict[str, str] = field(default_factory=dict)  # trial id -> trials/<id>.json (curves, config)
    best_trial: dict[str, Any] | None = None  # the best row's trials/<id>.json, when there is one

    @property
    def numeric_columns(self) -> set[str]:
        """Columns whose every filled cell is a number (right-aligned in the table)."""
        return {
            c
            for c in self.columns
            if any(r[c] is not None for r in self.rows)
            and all(isinstance(r[c], (int, float)) for r in self.rows if r[c] is not None)
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.meta.get("name", self.root.name),
            "metric": self.meta.get("metric"),
            "mode": self.meta.get("mode"),
            "meta": self.meta,
            "columns": self.columns,
            "rows": self.rows,
            "metric_column": self.metric_column,
            "best_index": self.best_index,
            "plots": [{"path": p, "caption": c, "url": f"/sweep/files/{p}"} for p, c in self.plots],
            "wide": sorted(self.wide),
            "missing": self.missing,
            "problems": self.problems,
            "trials": {t: f"/sweep/files/{p}" for t, p in self.trials.items()},
        }


_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$|^[+-]?(inf|nan)$", re.IGNORECASE)
TEXT_COLUMNS = ("trial_id", "status", "error")  # identifiers stay text even when they look like numbers


def _cell(text: str, column: str = "") -> Any:
    """CSV text -> int, float or str; empty and non-finite numbers become None (JSON has no NaN). Only
    plain numerals are numbers: Python's int() would read the trial id `48706_00001` as 4870600001."""
    text = text.strip()
    if text == "":
        return None
    if column in TEXT_COLUMNS or not _NUMBER.match(text):
        return text
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        return text
    return value if math.isfinite(value) else None


def read_leaderboard(path: Path) -> tuple[list[str], list[dict[str, Any]]]:
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        columns = list(reader.fieldnames or [])
        rows = [{c: _cell(row.get(c) or "", c) for c in columns} for row in reader]
    return columns, rows


def metric_column(columns: list[str], metric: str | None) -> str | None:
    """The leaderboard column holding the best value of the sweep metric, whatever its spelling."""
    if metric:
        for name in (f"{metric}_best", f"{metric} (best)", f"{metric}/best", metric, f"{metric} (last)"):
            if name in columns:
                return name
    return next((c for c in columns if c.endswith("_best") or c.endswith("(best)")), None)


def best_row(rows: list[dict[str, Any]], column: str | None, mode: str | None) -> int | None:
    scored = [
        (i, r[column]) for i, r in enumerate(rows) if column and isinstance(r.get(column), (int, float))
    ]
    if not scored:
        return None
    pick = min if mode == "min" else max
    return pick(scored, key=lambda item: item[1])[0]


def read_sweep(root: str | Path) -> SweepView:
    """Read what exists in a sweep directory; problems (unparseable files) are reported, not raised."""
    root = Path(root)
    missing = [name for name in EXPECTED if not (root / name).is_file()]
    problems: list[str] = []
    meta: dict[str, Any] = {}
    if (root / "sweep.json").is_file():
        try:
            loaded = json.loads((root / "sweep.json").read_text())
            meta = loaded if isinstance(loaded, dict) else {}
        except (OSError, ValueError) as exc:
            problems.append(f"sweep.json: unreadable ({exc})")
    columns: list[str] = []
    rows: list[dict[str, Any]] = []
    if (root / "leaderboard.csv").is_file():
        try:
            columns, rows = read_leaderboard(root / "leaderboard.csv")
        except (OSError, csv.Error, UnicodeDecodeError) as exc:
            problems.append(f"leaderboard.csv: unreadable ({exc})")
    column = metric_column(columns, meta.get("metric"))
    best_config = None
    if (root / "best_config.yaml").is_file():
        best_config = (root / "best_config.yaml").read_text(errors="replace")
    plots = [(p, c) for p, c in PLOTS_BEFORE if (root / p).is_file()]
    for path in sorted(root.glob("metric_vs_*.png")):
        plots.append((path.name, f"{meta.get('metric') or 'metric'} vs {path.stem[len('metric_vs_') :]}"))
    plots += [(p, c) for p, c in PLOTS_AFTER if (root / p).is_file()]
    for p, _ in PLOTS_BEFORE + PLOTS_AFTER:
        if not (root / p).is_file():
            missing.append(p)
    wide = {p for p, _ in plots if (size := png_size(root / p)) and size[0] > 1.6 * size[1]}
    trials = trial_files(root, rows)
    best_index = best_row(rows, column, meta.get("mode"))
    best_trial = None
    if best_index is not None and str(rows[best_index].get("trial_id")) in trials:
        best_trial = read_trial(root / trials[str(rows[best_index]["trial_id"])], problems)
    return SweepView(
        trials=trials,
        best_trial=best_trial,
        root=root,
        wide=wide,
        meta=meta,
        columns=columns,
        rows=rows,
        metric_column=column,
        best_index=best_index,
        best_config=best_config,
        plots=plots,
        missing=missing,
        problems=problems,
    )


def trial_files(root: Path, rows: list[dict[str, Any]]) -> dict[str, str]:
    """Trial id -> relative path of its trials/<id>.json, for the rows that have one (older sweeps and
    trials that never reported have none)."""
    out = {}
    for row in rows:
        trial = row.get("trial_id")
        if trial is None:
            continue
        relative = f"{TRIALS_DIR}/{trial_file_name(str(trial))}"
        if (root / relative).is_file():
            out[str(trial)] = relative
    return out


def read_trial(path: Path, problems: list[str]) -> dict[str, Any] | None:
    try:
        loaded = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        problems.append(f"{path.name}: unreadable ({exc})")
        return None
    return loaded if isinstance(loaded, dict) else None


def png_size(path: Path) -> tuple[int, int] | None:
    """(width, height) from a PNG's IHDR chunk, or None for anything else."""
    try:
        with path.open("rb") as handle:
            head = handle.read(24)
    except OSError:
        return None
    if len(head) < 24 or head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        return None
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


def resolve_sweep_file(root: str | Path, relative: str) -> Path | None:
    """The file `relative` names inside `root`, or None when it escapes `root` (.., absolute, symlink out),
    does not exist, or is not a kind of file the UI serves (images, tables, configs)."""
    base = Path(root).resolve()
    if "\x00" in relative:
        return None
    try:
        target = (base / relative).resolve()
        if not target.is_relative_to(base) or not target.is_file():
            return None
    except (OSError, RuntimeError, ValueError):  # symlink loops, a name too long for the OS (ENAMETOOLONG)
        return None
    if target.suffix.lower() not in SERVABLE_SUFFIXES:
        return None
    return target
