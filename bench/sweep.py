"""ASHA vs FIFO on one search space: epochs trained, wall time, best val/uar, and the rank of ASHA's best
config in the full-budget FIFO run.

Both sweeps get the same grid (model.depth x optim.lr, every config in each), the same seeds (sweep.seed
and trainer.seed, so a config trains identically in both until ASHA stops it), the same concurrency and
CPUs per trial and the same max_t; FIFO trains every config to max_t. They run one after the other in
one Ray session started beforehand, ASHA first, so a first-sweep warm-up cost lands on ASHA (it can only
flatter FIFO). Wall time is the whole `run_sweep` call: features from the cache, trials, result files.

    python bench/sweep.py                   # 16 configs on the synthetic corpus sized like quickstart
    python bench/sweep.py --data /work/shared/data/ravdess-dev-16k --corpus ravdess
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from _common import format_table, machine_line
from _sweep_common import (
    add_sweep_data_args,
    data_section,
    output_dir,
    quickstart_fixed,
    report_ratios,
    run_sweep_file,
    shutdown_ray_if_started,
    start_ray,
    trial_cpus,
    write_sweep_file,
)

KEYS = ("model.depth", "optim.lr")
LR_RANGE = (3e-4, 1e-2)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--configs", type=int, default=16, help="grid size: depths x learning rates")
    parser.add_argument("--max-t", type=int, default=27, help="epochs of a full trial (both schedulers)")
    parser.add_argument("--grace-period", type=int, default=1, help="ASHA's first rung (epochs)")
    parser.add_argument("--reduction-factor", type=float, default=3.0, help="ASHA's eta")
    parser.add_argument("--concurrency", type=int, default=2, help="trials at once (both schedulers)")
    parser.add_argument("--seed", type=int, default=0, help="sweep.seed and trainer.seed of both")
    add_sweep_data_args(parser, speakers=6, per_label=6)
    args = parser.parse_args(argv)
    if args.configs < 2:
        parser.error("--configs must be at least 2")
    if args.max_t < 1 or args.grace_period < 1 or args.grace_period > args.max_t:
        parser.error("need 1 <= --grace-period <= --max-t")
    if args.reduction_factor <= 1:
        parser.error("--reduction-factor must be > 1")
    if args.concurrency < 1:
        parser.error("--concurrency must be >= 1")
    return args


def grid(n_configs: int) -> dict[str, list[Any]]:
    """n configs as depths x learning rates: the divisor of n nearest sqrt(n) (at most 6) depths, and
    that many log-spaced learning rates in LR_RANGE, one significant digit (16 -> depth 1..4 x lr 3e-4,
    1e-3, 3e-3, 1e-2)."""
    depths = max(d for d in range(1, min(6, math.isqrt(n_configs)) + 1) if n_configs % d == 0)
    n_lr = n_configs // depths
    low, high = LR_RANGE
    if n_lr == 1:
        lrs = [1e-3]
    else:
        lrs = [float(f"{low * (high / low) ** (i / (n_lr - 1)):.1g}") for i in range(n_lr)]
    return {"model.depth": list(range(1, depths + 1)), "optim.lr": lrs}


def config_of(row: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(row.get(k) for k in KEYS)


def rank_in(rows: Sequence[dict[str, Any]], config: tuple[Any, ...]) -> int:
    """Competition rank (ties share the better rank) of `config` by best metric among `rows`."""
    score = {config_of(r): r["best"] for r in rows if r["best"] is not None}
    if config not in score:
        return len(rows)
    return 1 + sum(1 for value in score.values() if value > score[config] + 1e-12)


def curves_match(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether the shorter trial's per-epoch metric equals the longer one's first epochs (same seeds)."""
    va = [h.get("val/uar") for h in a["history"]]
    vb = [h.get("val/uar") for h in b["history"]]
    n = min(len(va), len(vb))
    return n > 0 and all(x is not None and y is not None and abs(x - y) < 1e-6 for x, y in zip(va, vb))


def asha_rungs(grace_period: int, reduction_factor: float, max_t: int) -> list[int]:
    """The rungs ser's ASHA uses (`ser.sweep.schedulers.asha_milestones`, the function the scheduler and
    the rung plot use too): strictly before max_t, so a trial's last epoch is never cut."""
    from ser.sweep.schedulers import asha_milestones

    return asha_milestones(grace_period, reduction_factor, max_t)


def replay_asha(
    curves: Sequence[Sequence[float]], order: Sequence[int], rungs: Sequence[int], rf: float
) -> int:
    """Epochs ASHA would train if the trials ran one at a time in `order` on these per-epoch curves:
    Ray's rule, a trial stops at a rung when its value is below the (1 - 1/rf) quantile of those that
    reached the rung before it. Valid here because a config trains identically under both schedulers."""
    recorded: dict[int, list[float]] = {r: [] for r in rungs}
    total = 0
    for index in order:
        curve = curves[index]
        epochs = len(curve)
        for rung in rungs:
            if rung > len(curve):
                break
            value, before = curve[rung - 1], list(recorded[rung])
            recorded[rung].append(value)
            if before and value < float(np.percentile(before, (1 - 1 / rf) * 100)):
                epochs = rung
                break
        total += epochs
    return total


def replay_summary(fifo: Sequence[dict[str, Any]], args: argparse.Namespace) -> dict[str, float] | None:
    """ASHA replayed on FIFO's curves: launch order as run (grid order), random orders, and synchronous
    successive halving (every config to a rung, then the top 1/rf go on) for the same rungs."""
    ordered = sorted(fifo, key=lambda r: r["trial_id"])  # trial ids follow the launch order
    curves = [[h.get("val/uar") for h in r["history"]] for r in ordered]
    if not curves or any(len(c) < args.max_t or any(v is None for v in c) for c in curves):
        return None  # a FIFO trial failed or lacks epochs: nothing to replay on
    rungs = asha_rungs(args.grace_period, args.reduction_factor, args.max_t)
    full = len(curves) * args.max_t
    rng = np.random.default_rng(args.seed)
    shuffled = [
        replay_asha(curves, rng.permutation(len(curves)), rungs, args.reduction_factor) for _ in range(200)
    ]
    alive, sync_epochs, done = list(range(len(curves))), 0, 0
    for rung in [*rungs, args.max_t]:
        sync_epochs += len(alive) * (rung - done)
        done = rung
        keep = max(1, math.ceil(len(alive) / args.reduction_factor))
        alive = sorted(alive, key=lambda i: -curves[i][rung - 1])[:keep]
        if done == args.max_t:
            break
    return {
        "grid_order": replay_asha(curves, range(len(curves)), rungs, args.reduction_factor) / full,
        "random_mean": float(np.mean(shuffled)) / full,
        "random_p10": float(np.percentile(shuffled, 10)) / full,
        "random_p90": float(np.percentile(shuffled, 90)) / full,
        "sync_sha": sync_epochs / full,
    }


def summarize_run(name: str, result: dict[str, Any], wall: float) -> dict[str, Any]:
    rows = result["rows"]
    best = result["best"] or (rows[0] if rows else None)
    return {
        "scheduler": name,
        "trials": len(rows),
        "full_length": sum(r["status"] == "completed" for r in rows),
        "stopped_early": sum(bool(r["stopped_early"]) for r in rows),
        "errors": sum(r["status"] == "error" for r in rows),
        "epochs": int(sum(r["epochs"] for r in rows)),
        "trial_s": sum(r["wall_seconds"] or 0.0 for r in rows),
        "wall_s": wall,
        "best val/uar": best["best"] if best else None,
        "best config": " ".join(f"{k.split('.')[-1]}={best.get(k)}" for k in KEYS) if best else "-",
    }


def main(argv: Sequence[str] | None = None) -> dict[str, float]:
    args = parse_args(argv)
    space_values = grid(args.configs)
    out = output_dir(args, "sweep")
    base, fixed = data_section(args, quickstart_fixed())
    fixed["trainer.seed"] = args.seed
    space = {key: {"grid": values} for key, values in space_values.items()}
    schedulers = {
        "asha": {
            "name": "asha",
            "max_t": args.max_t,
            "grace_period": args.grace_period,
            "reduction_factor": args.reduction_factor,
        },
        "fifo": {"name": "fifo", "max_t": args.max_t},
    }
    print(machine_line())
    print(
        f"search space: {len(space_values['model.depth'])} depths x {len(space_values['optim.lr'])} "
        f"learning rates {space_values['optim.lr']} = {args.configs} configs; max_t={args.max_t}, "
        f"ASHA grace_period={args.grace_period} reduction_factor={args.reduction_factor:g}; "
        f"{args.concurrency} trials at once, {trial_cpus(args.concurrency):g} CPU each; "
        f"data: {args.data or 'synthetic'}"
    )
    print(f"results under {out}", flush=True)
    was_running = start_ray()
    results: dict[str, dict[str, Any]] = {}
    walls: dict[str, float] = {}
    try:
        for name, scheduler in schedulers.items():
            path = write_sweep_file(
                out, f"bench_{name}", base, fixed, space, scheduler, args.concurrency, seed=args.seed
            )
            print(f"running {name.upper()} ...", flush=True)
            results[name], walls[name] = run_sweep_file(path, args.overrides, args.verbose)
            print(f"  {name.upper()}: {walls[name]:.1f} s", flush=True)
    finally:
        shutdown_ray_if_started(was_running)

    asha, fifo = results["asha"]["rows"], results["fifo"]["rows"]
    summary = [summarize_run(n.upper(), results[n], walls[n]) for n in schedulers]
    print()
    print(
        format_table(
            summary,
            [
                "scheduler",
                "trials",
                "full_length",
                "stopped_early",
                "errors",
                "epochs",
                "trial_s",
                "wall_s",
                "best val/uar",
                "best config",
            ],
        )
    )
    fifo_by_config = {config_of(r): r for r in fifo}
    per_config = []
    for row in asha:
        twin = fifo_by_config.get(config_of(row))
        per_config.append(
            {
                "depth": row.get("model.depth"),
                "lr": f"{row.get('optim.lr'):g}",
                "FIFO best": twin["best"] if twin else None,
                "FIFO rank": rank_in(fifo, config_of(row)),
                "ASHA epochs": row["epochs"],
                "ASHA best": row["best"],
                "ASHA rank": rank_in(asha, config_of(row)),
                "same curve": ("yes" if curves_match(row, twin) else "no") if twin else "-",
            }
        )
    per_config.sort(key=lambda r: (r["FIFO rank"], r["ASHA rank"]))
    print()
    print(format_table(per_config, list(per_config[0]) if per_config else ["depth"]))
    same = sum(r["same curve"] == "yes" for r in per_config)
    print(f"\nper-epoch val/uar identical in both runs (up to ASHA's stop): {same}/{len(per_config)} configs")

    asha_best = results["asha"]["best"] or asha[0]
    fifo_best = results["fifo"]["best"] or fifo[0]
    epochs_asha, epochs_fifo = summary[0]["epochs"], summary[1]["epochs"]
    ratios = {
        "asha_epoch_fraction": (epochs_asha / max(epochs_fifo, 1), "x"),
        "asha_wall_fraction": (walls["asha"] / max(walls["fifo"], 1e-9), "x"),
        "asha_best_rank_in_fifo": (float(rank_in(fifo, config_of(asha_best))), "rank"),
        "asha_best_vs_fifo_best": ((asha_best["best"] or 0.0) / max(fifo_best["best"] or 0.0, 1e-9), "x"),
    }
    replay = replay_summary(fifo, args)
    if replay is not None:
        print(
            f"ASHA replayed on FIFO's curves, one trial at a time with Ray's rung rule: launch order as run "
            f"{replay['grid_order']:.2f} of FIFO's epochs; random orders {replay['random_mean']:.2f} "
            f"(10-90%: {replay['random_p10']:.2f}-{replay['random_p90']:.2f}); synchronous successive "
            f"halving {replay['sync_sha']:.2f}"
        )
        ratios["replay_random_order_epoch_fraction"] = (replay["random_mean"], "x")
    else:
        print("ASHA replay on FIFO's curves: skipped (a FIFO trial failed or has fewer than max_t epochs)")
    frac, rank = ratios["asha_epoch_fraction"][0], int(ratios["asha_best_rank_in_fifo"][0])
    print(
        f"target ASHA epochs <= 1/3 of FIFO's: {'met' if frac <= 1 / 3 else 'MISSED'} ({frac:.2f}); "
        f"target ASHA's best in FIFO's top 3: {'met' if rank <= 3 else 'MISSED'} (rank {rank})"
    )
    return report_ratios(ratios)


if __name__ == "__main__":
    main()
