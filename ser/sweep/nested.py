"""Nested cross-validation of a whole sweep: an estimate in which no number used to choose a config has
seen the speakers it is reported on.

For each outer speaker fold o (gender-balanced groups, as `ser fit` makes them): the sweep runs on the
other speakers only, every trial a CV over `nested.inner_folds` train/validation folds of those speakers,
ranked by mean validation UA (ASHA applies inside); the best trial's config is then trained once more on
those speakers and tested once on fold o's speakers, which nothing before has seen. The report gives the
outer test UA mean +- sd over the outer folds and the config each outer fold chose, so the spread of the
choice is visible too. Each outer fold is an ordinary sweep directory (resumable with --resume).

Cost: outer_folds x (the sweep's trials x inner_folds folds, less what ASHA stops) + outer_folds final
trainings; with shared features and ASHA that is about outer_folds x inner_folds / cv.folds times one
CV sweep.
"""

from __future__ import annotations

import copy
import csv
import json
import time
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from ser.config import ConfigError
from ser.data.folds import holdout_fold, speaker_groups
from ser.data.prepared import prepare_data
from ser.report.metrics import mean_sd
from ser.sweep.results import best_config
from ser.sweep.spec import SweepPlan
from ser.training.fold import train_fold
from ser.training.result import read_metrics, write_metrics

FINAL = "final"  # outer_K/final: the chosen config trained on the inner speakers and tested once


def outer_groups(plan: SweepPlan) -> list[tuple[str, ...]]:
    """The outer folds' test speakers: gender-balanced groups over every speaker of the base config."""
    base = copy.deepcopy(plan.base)
    base.data.holdout.speakers = []
    base.data.holdout.fraction = 0.0
    prepared = prepare_data(base, progress=False)
    unique = sorted(set(prepared.speakers))
    k = int(plan.sweep.nested.outer_folds)
    if k > len(unique):
        raise ConfigError(f"invalid sweep key 'nested.outer_folds': {k} folds for {len(unique)} speakers")
    return [tuple(group) for group in speaker_groups(unique, k, int(base.data.fold_seed), prepared.genders)]


def inner_plan(plan: SweepPlan, outer: int, held_out: tuple[str, ...], root: Path) -> SweepPlan:
    """The sweep on the speakers outside outer fold `outer`: CV over inner folds, no test split."""
    inner = int(plan.sweep.nested.inner_folds)
    sweep = copy.deepcopy(plan.sweep)
    sweep.name = f"outer_{outer}"
    sweep.storage_path = str(root)
    sweep.cv.folds = inner
    sweep.nested.outer_folds = 0
    if sweep.wandb.group is None:
        sweep.wandb.group = f"{plan.sweep.name}-outer{outer}"
    base = copy.deepcopy(plan.base)
    base.data.holdout.speakers = list(held_out)
    base.data.holdout.fraction = 0.0
    base.data.folds = inner
    return SweepPlan(sweep=sweep, base=base, space=plan.space, source=plan.source)


def run_nested(
    plan: SweepPlan,
    resume: bool = False,
    address: str | None = None,
    wandb: bool | None = None,
    console: Any = None,
) -> dict[str, Any]:
    """Every outer fold's sweep and final test; nested.json / nested.csv and a table. `interrupted` when an
    inner sweep stopped early (run again with --resume)."""
    from rich.console import Console

    from ser.sweep.run import experiment_dir, run_sweep

    console = console or Console(stderr=True)
    root = experiment_dir(plan)
    if root.exists() and not resume:
        raise ConfigError(
            f"{root} already exists: pass --resume to continue that nested sweep, or sweep.name=NEW"
        )
    root.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    groups = outer_groups(plan)
    rows = []
    for outer, held_out in enumerate(groups):
        final_dir = root / f"outer_{outer}_{FINAL}"
        if (final_dir / "metrics.json").is_file():  # done before an interruption: keep it
            rows.append(read_metrics(final_dir / "metrics.json")["nested"])
            continue
        console.print(f"[bold]outer fold {outer}[/]: sweep without speakers {', '.join(held_out)}")
        sub = inner_plan(plan, outer, held_out, root)
        inner_dir = experiment_dir(sub)
        summary = run_sweep(sub, resume=inner_dir.exists(), address=address, wandb=wandb, console=console)
        if summary.get("interrupted"):
            return {"dir": root, "rows": rows, "interrupted": True}
        best = summary["best"]
        if best is None:
            raise ConfigError(f"outer fold {outer}: no trial of the inner sweep reported {plan.sweep.metric}")
        rows.append(final_test(sub, best, outer, held_out, final_dir))
    report = write_report(root, plan, rows, time.perf_counter() - started)
    console.print(nested_table(report))
    console.print(f"nested results: {root / 'nested.json'}")
    return {"dir": root, "rows": rows, "report": report, "interrupted": False}


def final_test(
    sub: SweepPlan, best: dict[str, Any], outer: int, held_out: tuple[str, ...], out: Path
) -> dict:
    """The chosen config trained on the inner speakers (fold 0's train/validation split), tested once on
    the outer fold's speakers."""
    cfg = best_config(sub, best["params"])
    cfg.trainer.progress_bar = False
    prepared = prepare_data(cfg, progress=False)
    result = train_fold(cfg, prepared, 0, out / "fold", fold=holdout_fold(prepared.folds))
    (out / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    row = {
        "outer_fold": outer,
        "test_speakers": list(held_out),
        "chosen_trial": best["trial_id"],
        "chosen": {k: v for k, v in best.items() if "." in k and not k.startswith(("val/", "test/"))},
        "inner_val_best": best["best"],
        "test": {k: (result.test or {}).get(k) for k in ("uar", "wa", "f1")},
        "config": str(out / "config.yaml"),
    }
    write_metrics(out / "metrics.json", {"nested": row, "fold": result.to_dict()})
    return row


def write_report(root: Path, plan: SweepPlan, rows: list[dict], seconds: float) -> dict[str, Any]:
    summary = {f"test/{k}": mean_sd([r["test"][k] for r in rows]) for k in ("uar", "wa", "f1")}
    report = {
        "name": plan.sweep.name,
        "metric": plan.sweep.metric,
        "outer_folds": len(rows),
        "inner_folds": int(plan.sweep.nested.inner_folds),
        "summary": summary,
        "outer": rows,
        "wall_seconds": seconds,
    }
    (root / "nested.json").write_text(json.dumps(report, indent=2, default=str))
    keys = sorted({k for r in rows for k in r["chosen"]})
    with (root / "nested.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["outer_fold", "test_speakers", "test/uar", "test/wa", "inner val best", *keys])
        for r in rows:
            writer.writerow(
                [
                    r["outer_fold"],
                    " ".join(r["test_speakers"]),
                    f"{r['test']['uar']:.4f}",
                    f"{r['test']['wa']:.4f}",
                    f"{r['inner_val_best']:.4f}",
                    *[r["chosen"].get(k, "") for k in keys],
                ]
            )
    return report


def nested_table(report: dict[str, Any]):
    from rich.table import Table

    table = Table(
        title=f"nested CV of {report['name']}: outer test folds (config chosen on inner validation)"
    )
    for column in ("outer", "test speakers", "test UA", "test WA", "inner val", "chosen"):
        table.add_column(column, justify="left" if column in ("test speakers", "chosen") else "right")
    for r in report["outer"]:
        chosen = ", ".join(f"{k.split('.')[-1]}={v}" for k, v in sorted(r["chosen"].items()))
        table.add_row(
            str(r["outer_fold"]),
            ",".join(s.rsplit(":", 1)[-1] for s in r["test_speakers"]),
            f"{r['test']['uar']:.3f}",
            f"{r['test']['wa']:.3f}",
            f"{r['inner_val_best']:.3f}",
            chosen,
        )
    s = report["summary"]
    table.add_row(
        "mean ± sd",
        "",
        f"{s['test/uar']['mean']:.3f} ± {s['test/uar']['sd']:.3f}",
        f"{s['test/wa']['mean']:.3f} ± {s['test/wa']['sd']:.3f}",
        "",
        "",
        style="bold",
    )
    return table
