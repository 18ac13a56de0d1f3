"""Per-trial overhead and memory of a sweep with 1, 2 and 4 trials at once.

Each level is a FIFO sweep of N copies of one small config (trainer.seed 0..N-1), all N at once, run by
the real `run_sweep` in one Ray session. A background thread samples the driver and every process below
it (Ray's gcs/raylet/agents and the trial workers) from /proc/<pid>/smaps_rollup.

overhead: a trial's wall time (its worker process's life: spawn, imports, actor creation, data
          hand-over, Trainer set-up, test, teardown) minus its training epochs, taken as epochs x the
          median per-epoch `time_this_iter_s` Tune recorded inside the trial (epochs after the first,
          whose time also holds the trial's set-up). Split into "start-up" (process spawn to the first
          sample where Ray titles it as the trial's actor: interpreter, imports, actor creation),
          "in trial" (time before the last report not spent in epochs: data hand-over, config, Trainer)
          and "tail" (the rest: final test, result files, teardown, exit).
memory:   peak summed PSS of driver + all Ray processes (shared pages, like the object store holding
          the features, counted once), per trial worker its peak USS (private memory) and how much of
          the object store it has mapped. With the copy check, one more run keeps only 2 labels (a
          smaller feature array, same batch shapes): the slope of a trial's USS outside the object store
          over the array size is how many private copies of the features a trial makes.

    python bench/trials.py                     # synthetic corpus, ~100 MB of log-mels
    python bench/trials.py --data /work/shared/data/ravdess-dev-16k --corpus ravdess
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from _common import format_table, machine_line
from _sweep_common import (
    MemorySampler,
    add_sweep_data_args,
    data_section,
    output_dir,
    report_ratios,
    run_sweep_file,
    shutdown_ray_if_started,
    start_ray,
    trial_cpus,
    write_sweep_file,
)

MB = 2**20
SMALL_MODEL = {
    "model.name": "emotion_detector2",  # global pooling: parameters do not depend on the clip length
    "model.depth": 2,
    "model.channels": 8,
}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--concurrency", default="1,2,4", help="comma-separated trials-at-once levels")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per trial")
    parser.add_argument("--interval", type=float, default=0.5, help="memory sampling period (s)")
    parser.add_argument(
        "--copy-check",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="one more run on 2 labels to measure private feature copies per trial",
    )
    add_sweep_data_args(parser, speakers=12, per_label=18)
    args = parser.parse_args(argv)
    try:
        args.levels = sorted({int(x) for x in str(args.concurrency).split(",") if x.strip()})
    except ValueError:
        parser.error(f"--concurrency: comma-separated integers, got {args.concurrency!r}")
    if not args.levels or args.levels[0] < 1:
        parser.error("--concurrency: levels must be >= 1")
    if args.epochs < 1:
        parser.error("--epochs must be >= 1")
    return args


def feature_array(sweep_file: Path, overrides: Sequence[str]) -> tuple[int, tuple[int, ...], list[str]]:
    """(bytes, shape, labels) of the array every trial is handed (computed into the cache if new)."""
    from ser.data.prepared import prepare_data
    from ser.sweep.spec import load_sweep

    data = prepare_data(load_sweep(sweep_file, list(overrides)).base, progress=True)
    return int(data.x.nbytes), tuple(data.x.shape), list(data.labels)


def _median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def measure_level(
    args: argparse.Namespace,
    out: Path,
    name: str,
    base: list[str],
    fixed: dict[str, Any],
    trials: int,
) -> dict[str, Any]:
    """Run `trials` identical trials at once; per-trial times and the memory peaks of the level."""
    space = {"trainer.seed": {"grid": list(range(trials))}}
    scheduler = {"name": "fifo", "max_t": args.epochs}
    path = write_sweep_file(out, name, base, fixed, space, scheduler, trials)
    data_bytes, shape, labels = feature_array(path, args.overrides)
    print(f"running {trials} trial(s) at once on {shape} ({data_bytes / MB:.1f} MB) ...", flush=True)
    start = time.time()
    with MemorySampler(args.interval) as sampler:
        result, wall = run_sweep_file(path, args.overrides, args.verbose)
    per_trial = []
    for row in result["rows"]:
        history = row["history"]
        pids = {int(h["pid"]) for h in history if h.get("pid") is not None}
        records = sampler.trial_records(sorted(pids))
        if not history or len(records) != 1:
            continue  # a trial whose worker the sampler did not see (too short) cannot be timed
        rec = records[0]
        iters = [float(h["time_this_iter_s"]) for h in history]
        epoch_s = _median(iters[1:] if len(iters) > 1 else iters)
        in_function = float(history[-1]["time_total_s"])
        born = max(rec.started, start)
        trial_wall = rec.last_seen - born
        startup = (rec.first_as_trial or born) - born
        train = len(iters) * epoch_s
        per_trial.append(
            {
                "epoch_s": epoch_s,
                "wall": trial_wall,
                "overhead": trial_wall - train,
                "startup": startup,
                "in_trial": in_function - train,
                "tail": trial_wall - startup - in_function,
                "uss": rec.peak_uss * 1024,
                "own": rec.peak_uss_no_shm * 1024,
                "pss": rec.peak_pss * 1024,
                "shm": rec.peak_shm_rss * 1024,
            }
        )
    if not per_trial:
        raise SystemExit(f"{name}: no trial could be matched to a sampled worker process")
    med = {key: _median([t[key] for t in per_trial]) for key in per_trial[0]}
    return {
        "level": f"{trials} at once",
        "trials": trials,
        "timed": len(per_trial),
        "peak_together": sampler.peak_trials,
        "data_bytes": data_bytes,
        "labels": labels,
        "sweep_s": wall,
        **med,
        "total_pss": sampler.peak_total_pss * 1024,
        "trials_pss": sampler.peak_trials_pss * 1024,
    }


def main(argv: Sequence[str] | None = None) -> dict[str, float]:
    args = parse_args(argv)
    out = output_dir(args, "trials")
    base, fixed = data_section(args, {**SMALL_MODEL, "data.folds": 6})
    print(machine_line())
    cpus = ", ".join(f"{trial_cpus(n):g}" for n in args.levels)
    print(
        f"levels {args.levels} trials at once ({cpus} CPU per trial), {args.epochs} epochs per trial, "
        f"model {SMALL_MODEL}; data: {args.data or 'synthetic'}"
    )
    print(f"results under {out}", flush=True)
    was_running = start_ray()
    try:
        levels = [measure_level(args, out, f"trials_{n}", base, fixed, n) for n in args.levels]
        subset = None
        if args.copy_check:
            keep = levels[0]["labels"][:2]
            small_fixed = {**fixed, "data.labels": keep}
            subset = measure_level(args, out, "trials_subset", base, small_fixed, args.levels[0])
            subset["level"] = f"{args.levels[0]} at once, labels {keep}"
    finally:
        shutdown_ray_if_started(was_running)

    rows = levels + ([subset] if subset else [])
    print()
    print(
        format_table(
            [
                {
                    "run": r["level"],
                    "data MB": r["data_bytes"] / MB,
                    "timed": f"{r['timed']}/{r['trials']}",
                    "epoch s": r["epoch_s"],
                    "trial wall s": r["wall"],
                    "overhead s": r["overhead"],
                    "start-up s": r["startup"],
                    "in trial s": r["in_trial"],
                    "tail s": r["tail"],
                    "overhead %": 100 * r["overhead"] / max(r["wall"], 1e-9),
                    "sweep s": r["sweep_s"],
                }
                for r in rows
            ],
            [
                "run",
                "data MB",
                "timed",
                "epoch s",
                "trial wall s",
                "overhead s",
                "start-up s",
                "in trial s",
                "tail s",
                "overhead %",
                "sweep s",
            ],
        )
    )
    print()
    print(
        format_table(
            [
                {
                    "run": r["level"],
                    "data MB": r["data_bytes"] / MB,
                    "workers seen together": r["peak_together"],
                    "peak PSS driver+Ray MB": r["total_pss"] / MB,
                    "peak PSS trials MB": r["trials_pss"] / MB,
                    "trial USS MB": r["uss"] / MB,
                    "trial USS w/o shm MB": r["own"] / MB,
                    "trial PSS MB": r["pss"] / MB,
                    "trial shm mapped MB": r["shm"] / MB,
                }
                for r in rows
            ],
            [
                "run",
                "data MB",
                "workers seen together",
                "peak PSS driver+Ray MB",
                "peak PSS trials MB",
                "trial USS MB",
                "trial USS w/o shm MB",
                "trial PSS MB",
                "trial shm mapped MB",
            ],
        )
    )

    first, last = levels[0], levels[-1]
    data = first["data_bytes"]
    ratios: dict[str, tuple[float, str]] = {
        "overhead_per_trial_s": (first["overhead"], "s"),
        "overhead_fraction_of_trial": (first["overhead"] / max(first["wall"], 1e-9), "x"),
    }
    if last["trials"] > first["trials"]:
        growth = (last["total_pss"] - first["total_pss"]) / (last["trials"] - first["trials"])
        ratios["mem_growth_per_extra_trial_vs_data"] = (growth / data, "x")
        ratios[f"peak_mem_{last['trials']}_vs_{first['trials']}_trials"] = (
            last["total_pss"] / max(first["total_pss"], 1),
            "x",
        )
        print(
            f"\nper extra trial: {growth / MB:+.0f} MB of driver+Ray PSS for a {data / MB:.1f} MB feature "
            f"array; a trial worker's private memory (USS) is {first['uss'] / MB:.0f} MB"
        )
    ratios["shm_mapped_vs_data"] = (first["shm"] / data, "x")
    if subset is not None:
        delta = data - subset["data_bytes"]
        copies = (first["own"] - subset["own"]) / delta if delta > 0 else float("nan")
        ratios["data_copies_per_trial"] = (copies, "x")
        fixed_cost = first["own"] - copies * data
        print(
            f"copy check: trial USS outside the object store {first['own'] / MB:.0f} MB with "
            f"{data / MB:.1f} MB of features, {subset['own'] / MB:.0f} MB with "
            f"{subset['data_bytes'] / MB:.1f} MB -> {copies:.2f} private copies of the features per trial; "
            f"the rest, {fixed_cost / MB:.0f} MB, is the worker process itself (Python, torch, Lightning)"
        )
    return report_ratios(ratios)


if __name__ == "__main__":
    main()
