"""W&B for sweeps: one live run per trial, written by the driver as results arrive, and a summary run.

Each trial's run opens when the trial starts, with the trial's own resolved config (nested, so grouping
by `model.depth` in the UI groups by what the trial really trained), logs every reported epoch (validation
and training metrics) as it happens, so an online dashboard shows curves during a long sweep, and is
finished when the trial ends: with its test metrics and confusion matrix when it completed, tagged
`stopped` when the scheduler stopped it, `failed` with the error otherwise. Trials that Tune ends without
a completion callback (the last trials of an experiment) are finished at experiment end, so every run is
complete; one still running when the sweep is interrupted is tagged `interrupted`, and `--resume`
continues it under the same run id. The summary run (one per sweep, a fixed id: a resumed sweep replaces
it) holds the leaderboard as a table and the sweep's plots.
Offline by default; `wandb sync DIR/wandb/offline-run-*` uploads later.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path
from typing import Any

RUNS: dict[str, Any] = {}  # trial id -> live run; module level: Tune pickles callbacks, not runs
SKIP = {"config", "trial_id", "date", "timestamp", "pid", "hostname", "node_ip", "checkpoint_dir_name"}


def loggable(result: dict[str, Any]) -> dict[str, float]:
    row = {}
    for key, value in result.items():
        if key in SKIP or isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if math.isfinite(value):
            row[key] = value
    return row


def init_run(**kwargs: Any):
    import wandb

    os.environ.setdefault("WANDB_SILENT", "true")
    return wandb.init(reinit="create_new", settings=wandb.Settings(silent=True, console="off"), **kwargs)


def run_id(group: str, name: str) -> str:
    """A fixed run id per trial (and one for the summary): a resumed sweep continues the same runs."""
    return f"{group}-{name}".replace("/", "-")


def finish_trial(trial: Any, state: str) -> None:
    """Test metrics and confusion matrix of a completed trial (from its metrics.json), then finish."""
    run = RUNS.pop(trial.trial_id, None)
    if run is None:
        return
    trial_dir = next(
        (Path(d) for d in (trial.local_path, trial.path) if d and (Path(d) / "metrics.json").is_file()),
        Path(trial.path or trial.local_path),
    )  # the trial's working copy first: it is synced to storage after the trial ends
    metrics_file = trial_dir / "metrics.json"
    metrics = json.loads(metrics_file.read_text()) if metrics_file.is_file() else {}
    if state == "completed" and metrics.get("status") != "completed":
        state = "stopped"  # ended by the scheduler before its last epoch: no test score
    for key, stat in (metrics.get("summary") or {}).items():
        if isinstance(stat, dict) and "mean" in stat:
            run.summary[key] = stat["mean"]
    confusion = sorted(trial_dir.glob("fold_*/confusion_matrix.png"))
    if confusion and state == "completed":
        import wandb

        run.log({"test/confusion_matrix": [wandb.Image(str(p), caption=p.parent.name) for p in confusion]})
    if metrics.get("error"):
        run.summary["error"] = metrics["error"]
    run.summary["trial_state"] = state
    run.tags = (*run.tags, state)
    run.finish(exit_code=1 if state == "failed" else 0)


def write_summary_run(
    project: str,
    group: str,
    mode: str,
    out_dir: Path,
    rows: list[dict[str, Any]],
    columns: list[str],
    conclusions: dict[str, Any] | None = None,
):
    """The sweep's leaderboard as a W&B table and its plots as images, in one run of the group; with
    `conclusions` (the summary of ser.sweep.results) also the effects, importance and confirmation tables
    and how the best was chosen."""
    import wandb

    for earlier in (out_dir / "wandb").glob(f"offline-run-*-{run_id(group, 'summary')}"):
        shutil.rmtree(earlier, ignore_errors=True)  # a resumed sweep's summary replaces the unsynced one
    run = init_run(
        project=project,
        group=group,
        name=f"{group}-summary",
        id=run_id(group, "summary"),
        resume="allow",
        job_type="sweep-summary",
        dir=str(out_dir),
        mode=mode,
    )
    table = wandb.Table(columns=columns, data=[[row.get(c) for c in columns] for row in rows])
    images = {
        f"plots/{p.stem}": wandb.Image(str(p))
        for p in sorted(out_dir.glob("*.png")) + sorted((out_dir / "best").glob("*.png"))
    }
    run.log({"leaderboard": table, **images, **conclusion_tables(conclusions or {})})
    if conclusions:
        run.summary["chosen_by"] = conclusions.get("chosen_by")
        best = conclusions.get("best") or {}
        run.summary["best_trial"] = best.get("trial_id") if isinstance(best, dict) else best
        run.summary["tied_with_best"] = len((conclusions.get("statistics") or {}).get("tied") or [])
    run.finish()
    return run


def conclusion_tables(conclusions: dict[str, Any]) -> dict[str, Any]:
    """W&B tables: effect per searched key (value, trials, mean, interval), importance, confirmation."""
    import wandb

    out: dict[str, Any] = {}
    for key, effect in (conclusions.get("effects") or {}).items():
        data = [[str(p["value"]), p["trials"], p["mean"], p["low"], p["high"]] for p in effect["points"]]
        out[f"effects/{key}"] = wandb.Table(columns=[key, "trials", "mean", "low", "high"], data=data)
    weights = conclusions.get("importance")
    if isinstance(weights, dict) and "error" not in weights:
        out["importance"] = wandb.Table(
            columns=["key", "importance"], data=[[k, v] for k, v in weights.items()]
        )
    confirmation = conclusions.get("confirmation") or {}
    if confirmation.get("trials"):
        columns = [
            "trial_id",
            "search_rank",
            "search_mean",
            "confirm_rank",
            "confirm_mean",
            "confirm_low",
            "confirm_high",
            "seeds",
        ]
        out["confirmation"] = wandb.Table(
            columns=columns, data=[[e.get(c) for c in columns] for e in confirmation["trials"]]
        )
    return out
