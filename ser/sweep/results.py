"""A finished (or interrupted) sweep -> leaderboard.csv, best_config.yaml, best checkpoint, plots, table,
and trials/<id>.json (each trial's curves and config for the sweep page).

Everything is read from what Tune and the trials wrote on disk (the ResultGrid and each trial's
`metrics.json`, the `ser fit` schema), so the same function summarises a sweep after `--resume` or from
another machine.

The leaderboard ranks by the selection metric only (the sweep's `metric`, which is also every trial's
`trainer.monitor`): its best epoch, the one whose checkpoint the trial kept. Test scores of individual
trials are not on it unless asked for (`--show-test`), and then marked as not for choosing: choosing among
trials by their test score is exactly the leak speaker-independent folds exist to prevent. The best trial
is scored on its test split once; that number is in `best/metrics.json`.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from ser.data.paths import write_atomic
from ser.report.plots import plot_confusion, plot_curves
from ser.sweep.plots import plot_metric_vs_keys, plot_parallel_coordinates, plot_rungs
from ser.sweep.schedulers import asha_milestones
from ser.sweep.spec import (
    COND_SEP,
    GRID_POINT,
    SweepPlan,
    apply_params,
    count_trials,
    flat_params,
    grid_points,
    trial_overrides,
)
from ser.sweep.trial_files import finite_or_none, trial_record, write_trial_files
from ser.training.result import fold_results, read_metrics, total_confusion

LEADERBOARD_COLUMNS = ["rank", "trial_id", "status", "best", "last", "best_epoch", "epochs", "wall_seconds"]
# each trial's uncertainty (ser.sweep.conclusions) and the confirmation stage (ser.sweep.confirm)
BOARD_COLUMNS = [
    "mean",
    "sd",
    "ci_low",
    "ci_high",
    "p_better",
    "tied",
    "n_folds",
    "confirm_mean",
    "confirm_sd",
    "confirm_rank",
    "chosen_by",
]
TEST_COLUMN = "test/uar (not for choosing)"


def _history(result) -> list[dict[str, Any]]:
    """Per-epoch results, one row per iteration (a resumed trial repeats the iterations it re-trained:
    the last report of each wins)."""
    frame = result.metrics_dataframe
    if frame is None or "training_iteration" not in frame:
        return []
    rows: dict[int, dict[str, Any]] = {}
    for row in frame.to_dict("records"):
        rows[int(row["training_iteration"])] = row
    return [rows[i] for i in sorted(rows)]


def collect_rows(result_grid, plan: SweepPlan) -> list[dict[str, Any]]:
    """One row per trial: searched values, the metric at its best and last epoch, epochs, status. Trials
    of the sweep that Tune has not created yet (an interrupted sweep) are `pending` rows with the values
    already fixed for them (their grid point), so the board always lists every trial."""
    metric, mode = plan.sweep.metric, plan.sweep.mode
    max_t = int(plan.sweep.scheduler.max_t)
    trials = _tune_trials(result_grid)
    rows = []
    for result in result_grid:
        trial_dir = Path(result.path)
        trial = trials.get(str(trial_dir))
        history = _history(result)
        values = [(int(h["training_iteration"]), finite_or_none(h.get(metric))) for h in history]
        values = [(epoch, v) for epoch, v in values if v is not None]
        pick = max if mode == "max" else min
        best_epoch, best = pick(values, key=lambda item: item[1]) if values else (None, None)
        metrics_file = trial_dir / "metrics.json"
        outcome = read_metrics(metrics_file) if metrics_file.is_file() else {}
        metrics = result.metrics or {}
        epochs = len(history)
        started = trial is not None and trial.status in ("RUNNING", "PAUSED")
        status = _status(result.error, outcome, epochs, max_t, bool(metrics.get("done")), started)
        params = _trial_config(result, trial)
        row = {
            "trial_id": str(metrics.get("trial_id") or (trial.trial_id if trial else trial_dir.name)),
            "status": status,
            "best": best,
            "last": values[-1][1] if values else None,
            "best_epoch": best_epoch,
            "epochs": epochs,
            "stopped_early": status == "stopped",
            "wall_seconds": finite_or_none(metrics.get("time_total_s")),
            "test/uar": ((outcome.get("summary") or {}).get("test/uar") or {}).get("mean"),
            "error": _error_line(result.error, outcome),
            "path": str(trial_dir),
            "params": params,
            "history": history,
            **trial_overrides(plan.base, params),
        }
        rows.append(row)
    rows.extend(_not_created(plan, [r["params"] for r in rows]))
    reverse = mode == "max"
    rows.sort(key=lambda r: (r["best"] is None, -(r["best"] or 0) if reverse else (r["best"] or 0)))
    return rows


def _tune_trials(result_grid) -> dict[str, Any]:
    """Tune's own trial records by trial folder: they carry the config and status of a trial that never
    reported (a result has neither). ResultGrid keeps them in its ExperimentAnalysis."""
    analysis = getattr(result_grid, "_experiment_analysis", None)
    return {str(t.path): t for t in getattr(analysis, "trials", None) or [] if t.path}


def _not_created(plan: SweepPlan, drawn: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`pending` rows for the trials an interrupted sweep had not created: each with the grid point it
    will get (the points no trial took yet); values drawn at random are drawn when it starts."""
    missing = count_trials(plan) - len(drawn)
    if missing <= 0:
        return []
    left = [dict(p) for p in grid_points(plan.space, int(plan.sweep.seed))] * int(plan.sweep.num_samples)
    for params in drawn:
        point = params.get(GRID_POINT)
        if point in left:
            left.remove(point)
    rows = []
    for i in range(missing):
        params = {GRID_POINT: left[i]} if i < len(left) else {}
        rows.append(
            {
                "trial_id": "(not created)",
                "status": "pending",
                "best": None,
                "last": None,
                "best_epoch": None,
                "epochs": 0,
                "stopped_early": False,
                "wall_seconds": None,
                "test/uar": None,
                "error": "",
                "path": "",
                "params": params,
                "history": [],
                **trial_overrides(plan.base, params),
            }
        )
    return rows


def _trial_config(result, trial: Any = None) -> dict[str, Any]:
    """The trial's sampled params: from its results, else Tune's trial record or params.json (a trial
    that failed or never reported)."""
    if result.config:
        return dict(result.config)
    if trial is not None and trial.config:
        return dict(trial.config)
    params = Path(result.path) / "params.json"
    return json.loads(params.read_text()) if params.is_file() else {}


def _status(
    error: Any, outcome: dict[str, Any], epochs: int, max_t: int, done: bool, started: bool = False
) -> str:
    """completed (trained to its end and tested) | stopped (by the scheduler) | error | interrupted
    (started and not finished: resume it) | pending (never ran)."""
    if error or outcome.get("status") == "error":
        return "error"
    if outcome.get("status") == "completed":
        return "completed"
    if epochs == 0:
        return "interrupted" if started else "pending"
    return "stopped" if done and epochs < max_t else "interrupted"


def _error_line(error: BaseException | None, outcome: dict[str, Any]) -> str:
    if outcome.get("error"):
        return str(outcome["error"])
    if error is None:
        return ""
    text = str(error).strip().splitlines()
    for line in reversed(text):  # Ray wraps the trial's exception: the last line names it
        if line.strip():
            return line.strip()[:300]
    return type(error).__name__


def write_leaderboard(
    rows: Sequence[dict[str, Any]], keys: Sequence[str], metric: str, path: Path, show_test: bool = False
) -> Path:
    """leaderboard.csv: ranked by the best `metric` (the selection metric); test UA only with show_test."""
    header = [
        "rank",
        "trial_id",
        "status",
        f"{metric} (best)",
        f"{metric} (last)",
        "best_epoch",
        "epochs",
        "wall_seconds",
        *keys,
        *([TEST_COLUMN] if show_test else []),
        "error",
        *BOARD_COLUMNS,
    ]
    with io.StringIO(newline="") as handle:  # written whole by one rename: never half a board
        writer = csv.writer(handle)
        writer.writerow(header)
        for rank, r in enumerate(rows, 1):
            writer.writerow(
                [
                    rank,
                    r["trial_id"],
                    r["status"],
                    _fmt(r["best"]),
                    _fmt(r["last"]),
                    "" if r["best_epoch"] is None else r["best_epoch"],
                    r["epochs"],
                    _fmt(r["wall_seconds"], 1),
                    *[r.get(k, "") for k in keys],
                    *([_fmt(r["test/uar"])] if show_test else []),
                    r["error"],
                    *board_cells(r),
                ]
            )
        return write_atomic(path, handle.getvalue())


def board_cells(r: dict[str, Any]) -> list[str]:
    """The BOARD_COLUMNS cells of a row: numbers to 4 places, tied as yes/no, empty where unknown."""
    cells = []
    for column in BOARD_COLUMNS:
        value = r.get(column)
        if column == "tied":
            cells.append("" if value is None else ("yes" if value else "no"))
        elif isinstance(value, float):
            cells.append(_fmt(value))
        else:
            cells.append("" if value is None else str(value))
    return cells


def _fmt(value: Any, digits: int = 4) -> str:
    return "" if value is None else f"{float(value):.{digits}f}"


def samplers(plan: SweepPlan) -> dict[str, str]:
    return {k.split(COND_SEP)[-1]: sampler for k, (sampler, _) in plan.space.items()}


def rungs(plan: SweepPlan) -> list[int]:
    s = plan.sweep.scheduler
    if s.name != "asha":
        return []
    return asha_milestones(int(s.grace_period), float(s.reduction_factor), int(s.max_t))


def best_config(plan: SweepPlan, params: dict[str, Any]) -> DictConfig:
    cfg = apply_params(plan.base, flat_params(params))
    cfg.trainer.progress_bar = True
    return cfg


def write_best(plan: SweepPlan, best: dict[str, Any], out_dir: Path, chosen_by: str = "") -> None:
    """best_config.yaml (headed by how the best was chosen), best/ (checkpoints, metrics.json, predictions,
    confusion matrix, curves) of the best trial."""
    cfg = best_config(plan, best["params"])
    header = f"# sweep {plan.sweep.name}, trial {best['trial_id']}: chosen by {chosen_by or 'the search'}\n"
    write_atomic(out_dir / "best_config.yaml", header + OmegaConf.to_yaml(cfg, resolve=True))
    best_dir = out_dir / "best"
    best_dir.mkdir(exist_ok=True)
    trial_dir = Path(best["path"])
    checkpoints = sorted(trial_dir.glob("fold_*/best.ckpt"))
    if checkpoints:
        shutil.copy2(checkpoints[0], best_dir / "checkpoint.ckpt")
        if len(checkpoints) > 1:
            for ckpt in checkpoints:
                shutil.copy2(ckpt, best_dir / f"{ckpt.parent.name}.ckpt")
    for predictions in sorted(trial_dir.glob("fold_*/predictions.npz")):  # for `ser report SWEEP_DIR`
        (best_dir / predictions.parent.name).mkdir(exist_ok=True)
        shutil.copy2(predictions, best_dir / predictions.parent.name / predictions.name)
    metrics_file = trial_dir / "metrics.json"
    if metrics_file.is_file():
        metrics = read_metrics(metrics_file)
        shutil.copy2(metrics_file, best_dir / "metrics.json")
        confusion = total_confusion(fold_results(metrics))
        if confusion is not None:
            plot_confusion(
                confusion,
                metrics["labels"],
                best_dir / "confusion_matrix.png",
                f"best trial {best['trial_id']} (chosen on validation; test)",
            )
        folds = fold_results(metrics)
        if any(f.history for f in folds):
            plot_curves(
                {f"fold {f.fold}": f.history for f in folds},
                best_dir / "curves.png",
                f"best trial {best['trial_id']}",
                selected={f"fold {f.fold}": f.selection.epoch for f in folds},
            )


def _record(plan: SweepPlan, row: dict[str, Any], keys: Sequence[str]) -> dict[str, Any]:
    """trials/<id>.json's content; a trial whose params no longer build a config keeps its curves."""
    try:
        cfg = best_config(plan, row["params"])
    except Exception:  # noqa: BLE001 (a failed trial's params may be what failed)
        cfg = None
    fixed = OmegaConf.to_container(plan.sweep.fixed, resolve=True) if plan.sweep.fixed else {}
    return trial_record(row, keys, plan.sweep.metric, plan.sweep.mode, plan.base, cfg, fixed=fixed)


def summarize_sweep(result_grid, plan: SweepPlan, out_dir: Path, show_test: bool = False) -> dict[str, Any]:
    """Write every result file of the sweep into `out_dir`; returns the rows and the best trial."""
    metric = plan.sweep.metric
    keys = list(dict.fromkeys(plan.searched_keys))
    rows = collect_rows(result_grid, plan)
    board = board_statistics(rows, plan, out_dir)
    write_leaderboard(rows, keys, metric, out_dir / "leaderboard.csv", show_test=show_test)
    plot_parallel_coordinates(rows, keys, metric, samplers(plan), out_dir / "parallel_coordinates.png")
    plot_metric_vs_keys(rows, keys, metric, samplers(plan), out_dir)
    milestones = rungs(plan)
    plot_rungs(
        rows,
        metric,
        milestones,
        plan.sweep.scheduler.name,
        int(plan.sweep.scheduler.max_t),
        out_dir / "asha_rungs.png",
        colour_key=keys[0] if keys else None,
        sampler=samplers(plan).get(keys[0]) if keys else None,
    )
    write_trial_files([_record(plan, r, keys) for r in rows if r["path"]], out_dir)  # not created: no file
    best = board["best"]
    if best is not None:
        write_best(plan, best, out_dir, board["chosen_by"])
    board.update(write_conclusions(rows, plan, out_dir, milestones, board))
    return {"rows": rows, "best": best, "keys": keys, "rungs": milestones, **board}


def board_statistics(rows: list[dict[str, Any]], plan: SweepPlan, out_dir: Path) -> dict[str, Any]:
    """Intervals, the paired comparison with the search's best and the tied group into the rows; the
    confirmation stage's scores if it ran; which trial is the best and how it was chosen."""
    from ser.sweep.conclusions import add_statistics
    from ser.sweep.confirm import read_confirmation

    statistics = add_statistics(
        rows, plan.sweep.metric, plan.sweep.mode, float(plan.sweep.stats.rope), float(plan.sweep.stats.level)
    )
    ranked = [r for r in rows if r["best"] is not None]
    best, chosen_by = (ranked[0] if ranked else None), "search only (best validation score of one run)"
    confirmation = read_confirmation(out_dir)
    if confirmation:
        by_id = {str(r["trial_id"]): r for r in rows}
        for entry in confirmation.get("trials", []):
            row = by_id.get(str(entry["trial_id"]))
            if row is not None:
                row.update({k: entry.get(k) for k in ("confirm_mean", "confirm_sd", "confirm_rank")})
        if confirmation.get("chosen") in by_id:
            best = by_id[confirmation["chosen"]]
            k, seeds = confirmation["top_k"], confirmation["seeds"]
            chosen_by = f"confirmation (mean of top {k} configs x {seeds} new seeds)"
    if best is not None:
        best["chosen_by"] = chosen_by
    return {"best": best, "chosen_by": chosen_by, "statistics": statistics, "confirmation": confirmation}


def write_conclusions(
    rows: list[dict[str, Any]], plan: SweepPlan, out_dir: Path, milestones, board: dict[str, Any]
) -> dict:
    """stats.json and effect_<key>.png: per-key effects with intervals, fANOVA importance, and per ASHA
    rung how many stopped trials were within the noise of the survivors."""
    import time

    from ser.sweep.conclusions import STATS_FILE, rung_noise
    from ser.sweep.effects import importance, key_effects, plot_effects

    start = time.perf_counter()
    keys = list(dict.fromkeys(plan.searched_keys))
    level, rope = float(plan.sweep.stats.level), float(plan.sweep.stats.rope)
    ratio = next((r["ratio"] for r in rows if r.get("ratio")), 0.25)
    effects = key_effects(rows, keys, samplers(plan), level, ratio)
    for old in out_dir.glob("effect_*.png"):
        old.unlink()
    plot_effects(effects, plan.sweep.metric, out_dir)
    try:
        weights = importance(rows, plan.space, plan.sweep.mode, seed=int(plan.sweep.seed))
    except (ValueError, RuntimeError) as exc:  # optuna refuses degenerate studies
        weights = {"error": str(exc)}
    noise = rung_noise(
        rows,
        milestones,
        plan.sweep.metric,
        plan.sweep.mode,
        str(plan.sweep.rung_metric),
        float(plan.sweep.rung_ema),
        rope,
        level,
        ratio,
    )
    out = {"effects": effects, "importance": weights, "rung_noise": noise}
    payload = {
        **out,
        "metric": plan.sweep.metric,
        "rung_metric": str(plan.sweep.rung_metric),
        "best": board["best"]["trial_id"] if board.get("best") else None,
        "chosen_by": board.get("chosen_by"),
        "comparison": board.get("statistics"),
        "confirmation": board.get("confirmation"),
        "trials": {
            str(r["trial_id"]): {k: r.get(k) for k in ("fold_scores", "interval", "p_worse", *BOARD_COLUMNS)}
            for r in rows
        },
        "seconds_effects_importance": time.perf_counter() - start,
    }
    write_atomic(out_dir / STATS_FILE, json.dumps(payload, indent=2, default=str))
    return out


def top_table(rows: Sequence[dict[str, Any]], keys: Sequence[str], metric: str, n: int = 10):
    """The top trials by the selection metric, then how far each can be told from #1: two tables, each
    compact enough for an 80-column terminal (one would have to cut the key names)."""
    from rich.console import Group
    from rich.table import Table

    table = Table(title=f"top trials by best {metric} (validation)", pad_edge=False, collapse_padding=True)
    # whole key names (`kernel_size`, never `kernel_siz`): a long one wraps after an underscore
    names = [k.split(".")[-1] for k in keys]
    headers = ["#", "trial", "status", "best", "epochs", *[_wrap_name(k) for k in names], "seconds"]
    for column in headers:
        table.add_column(
            column, justify="left" if column in ("trial", "status") else "right", overflow="fold"
        )
    stats = Table(
        title=f"which differences are real: {metric} over folds; P>#1: P(better than #1), '=': tied with "
        "#1; chosen: by confirmation (conf) or search (best)",
        pad_edge=False,
        collapse_padding=True,
    )
    for column in ("#", "trial", "mean±sd", "95% CI", "P>#1", "chosen"):
        stats.add_column(column, justify="left" if column == "trial" else "right", overflow="fold")
    for rank, r in enumerate(rows[:n], 1):
        status = {"completed": "done", "error": "ERROR", "interrupted": "intr"}.get(r["status"], r["status"])
        style = "red" if r["status"] == "error" else ("dim" if r["stopped_early"] else "")
        trial = str(r["trial_id"]).split("_")[-1]
        table.add_row(
            str(rank),
            trial,
            status,
            _fmt(r["best"], 3),
            str(r["epochs"]),
            *[_short(r.get(k, "")) for k in keys],
            _fmt(r["wall_seconds"], 0),
            style=style,
        )
        stats.add_row(str(rank), trial, *stats_cells(r), style=style)
    return Group(table, stats)


def _wrap_name(name: str, width: int = 8) -> str:
    """`kernel_size` -> "kernel_\\nsize": a header line break after an underscore, so a long key name
    takes two short lines instead of being cut."""
    if len(name) <= width or "_" not in name:
        return name
    lines, line = [], ""
    for part in name.split("_"):
        piece = part if not line else f"_{part}"
        if line and len(line) + len(piece) > width:
            lines.append(line + "_")
            line = part
        else:
            line += piece
    return "\n".join([*lines, line])


def stats_cells(r: dict[str, Any]) -> list[str]:
    """mean ± sd over folds, the interval, P(better than #1) with '=' when tied with #1, how the best was
    chosen (console table)."""
    mean, sd = r.get("mean"), r.get("sd")
    spread = "" if mean is None else (f"{mean:.3f}" if sd is None else f"{mean:.3f}±{sd:.3f}")
    low, high = r.get("ci_low"), r.get("ci_high")
    ci = "" if low is None or high is None else f"{low:.3f}-{high:.3f}"
    p = r.get("p_better")
    cell = "" if p is None else f"{p:.2f}" + ("=" if r.get("tied") else "")
    chosen = ""
    if r.get("chosen_by"):
        chosen = "conf" if str(r.get("chosen_by")).startswith("confirmation") else "best"
    return [spread, ci, cell, chosen]


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.1e}" if 0 < abs(value) < 0.01 else f"{value:.3g}"
    return str(value)[:10]
