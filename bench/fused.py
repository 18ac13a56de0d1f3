"""K speaker folds of one config: fused into one model vs today's lockstep threads vs one after another.

fused:      the CV trial path with `trainer.fused=always`: the K folds as one fused model
            (ser.training.fused), one grouped forward/backward per step.
lockstep:   the same loop without fusing the networks (`trainer.fused=auto` on a CPU): each step runs
            the K folds' networks one after another in one thread.
threads:    the CV trial path with `trainer.fused=never`: K Lightning loops in K threads meeting at a
            barrier every epoch (what a `cv.folds: K` trial ran before fusion).
sequential: `ser fit data.fold=all` before fusion: `train_fold` for each fold in turn.

Same config, same prepared data (one cache), same seeds. Each variant runs in its own process (so its
peak memory is its own) and the variants run interleaved, --repeats rounds, so a change in the machine's
load hits all of them; times are medians over rounds. "wall" is training + validation + the final test
of all K folds (data preparation excluded), "fold-epochs/s" is K x epochs / wall. The per-epoch validation
UA of every fold must agree between variants (fused equals K separate runs up to float rounding).

    python bench/fused.py                                   # synthetic corpus, K=6, default CNN, 3 epochs
    python bench/fused.py --data /work/shared/data/ravdess-dev-16k --corpus ravdess --epochs 2
    python bench/fused.py --device cuda                     # on a GPU
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from _common import (
    add_data_args,
    bench_config,
    format_table,
    machine_line,
    maxrss_mb,
    median,
    ratios_line,
    safe_ratio,
    select_dataset,
)

VARIANTS = ("fused", "lockstep", "threads", "sequential")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--folds", type=int, default=6, help="K: speaker folds trained (data.folds)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=2, help="interleaved rounds of all variants")
    parser.add_argument("--device", default="cpu", help="trainer.accelerator: cpu | cuda | auto")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (a sweep trial: its cpus)")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated subset")
    parser.add_argument("--out", default=None, help="run folders and results (default: a temp dir)")
    parser.add_argument("--json", default=None, help="also write the measurements to this JSON file")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)  # one variant, in a subprocess
    parser.add_argument("--result", default=None, help=argparse.SUPPRESS)
    add_data_args(parser)
    parser.set_defaults(synthetic_speakers=12, synthetic_per_label=6)
    args = parser.parse_args(argv)
    args.variant_list = [v for v in args.variants.split(",") if v]
    unknown = sorted(set(args.variant_list) - set(VARIANTS))
    if unknown:
        parser.error(f"--variants: unknown {unknown}; choose from {list(VARIANTS)}")
    return args


def config(args: argparse.Namespace, variant: str, out: Path):
    return bench_config(
        args,
        [
            f"data.folds={args.folds}",
            f"trainer.max_epochs={args.epochs}",
            f"trainer.accelerator={args.device}",
            f"trainer.fused={'always' if variant == 'fused' else 'never'}",
            "trainer.progress_bar=false",
            f"trainer.output_dir={out}",
        ],
    )


def prepare(args: argparse.Namespace, cfg):
    from ser.data.prepared import prepare_data

    dataset = select_dataset(cfg, args.limit) if args.limit else None
    return prepare_data(cfg, progress=False, dataset=dataset)


# --------------------------------------------------------------------------------- one variant (child)
def run_variant(args: argparse.Namespace, variant: str, out: Path) -> dict[str, Any]:
    import ray.tune  # noqa: F401 - imported by a trial's first report; not part of any variant's time
    import torch

    from ser.sweep.trials import EpochReporter, train_folds_in_lockstep
    from ser.training.fold import train_fold
    from ser.training.fused import train_folds_fused

    torch.set_num_threads(args.threads)
    cfg = config(args, variant, out)
    prepared = prepare(args, cfg)
    folds = list(range(min(args.folds, len(prepared.folds))))
    cuda = torch.cuda.is_available() and args.device != "cpu"
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    rss_before = maxrss_mb()
    start = time.perf_counter()
    execution: dict[str, Any] = {"mode": "sequential"}
    if variant == "sequential":
        results = [train_fold(cfg, prepared, k, out / f"fold_{k}") for k in folds]
    elif variant == "lockstep":  # what the trial path runs with trainer.fused=auto on a CPU
        execution["mode"] = "lockstep"
        reporter = EpochReporter(folds, out / "scratch", report=lambda summary: None)
        reporter.in_one_thread()
        hooks = {k: reporter.hook(k) for k in folds}
        results = train_folds_fused(
            cfg, prepared, folds, out, on_epoch=hooks, after_epoch=reporter.epoch_end, fuse_network=False
        )
    else:
        reporter = EpochReporter(folds, out / "scratch", report=lambda summary: None)
        results = train_folds_in_lockstep(cfg, prepared, folds, out, reporter, {}, execution)
    wall = time.perf_counter() - start
    epochs = sum(r.epochs for r in results)
    return {
        "variant": variant,
        "execution": execution.get("mode"),
        "wall_s": wall,
        "fold_epochs": epochs,
        "fold_epochs_per_s": epochs / wall,
        "rss_before_mb": rss_before,
        "rss_peak_mb": maxrss_mb(),
        "gpu_peak_mb": torch.cuda.max_memory_allocated() / 2**20 if cuda else None,
        "val_uar": [[h["val/uar"] for h in r.history] for r in results],
        "test_uar": [r.test["uar"] for r in results],
    }


# ------------------------------------------------------------------------------------ driver (parent)
def spawn(variant: str, argv: Sequence[str], out: Path) -> dict[str, Any]:
    """One variant in a fresh interpreter: its own peak memory, no state carried from another variant."""
    out.mkdir(parents=True, exist_ok=True)
    result = out / f"{variant}.json"
    script = Path(__file__).resolve()
    cmd = [sys.executable, str(script), *argv, f"--out={out}", "--child", variant, "--result", str(result)]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    for attempt in (1, 2):
        done = subprocess.run(cmd, cwd=script.parent, env=env, capture_output=True, text=True)
        if done.returncode == 0:
            return {**json.loads(result.read_text()), "attempts": attempt}
        error = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"
        print(f"  {variant} failed (attempt {attempt}): {error}", flush=True)
    raise SystemExit(f"variant {variant} failed twice:\n{done.stderr[-4000:]}")


def without_options(argv: Sequence[str], names: Sequence[str]) -> list[str]:
    """argv less the options `names` (as `--name=value` or `--name value`)."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg in names:
            skip = True
        elif not arg.startswith(tuple(f"{name}=" for name in names)):
            out.append(arg)
    return out


def curve_gap(a: list[list[float]], b: list[list[float]]) -> float:
    """Largest |difference| between two variants' per-fold, per-epoch validation UA (inf if shapes differ)."""
    if [len(c) for c in a] != [len(c) for c in b]:
        return float("inf")
    return max((abs(x - y) for ca, cb in zip(a, b) for x, y in zip(ca, cb)), default=0.0)


def summarize(runs: list[dict[str, Any]], variants: Sequence[str]) -> list[dict[str, Any]]:
    reference = next((r for r in runs if r["variant"] == "sequential"), runs[0])
    rows = []
    for variant in variants:
        mine = [r for r in runs if r["variant"] == variant]
        walls = [r["wall_s"] for r in mine]
        rows.append(
            {
                "variant": variant,
                "path": mine[0]["execution"],
                "wall s": median(walls),
                "walls": walls,
                "fold-epochs/s": median([r["fold_epochs_per_s"] for r in mine]),
                "peak RSS MB": max(r["rss_peak_mb"] for r in mine),
                "RSS over data MB": max(r["rss_peak_mb"] - r["rss_before_mb"] for r in mine),
                "GPU peak MB": mine[0]["gpu_peak_mb"],
                "max |dval UA|": max(curve_gap(r["val_uar"], reference["val_uar"]) for r in mine),
                "max |dtest UA|": max(
                    abs(x - y) for r in mine for x, y in zip(r["test_uar"], reference["test_uar"])
                ),
            }
        )
    return rows


def main(argv: Sequence[str] | None = None) -> dict[str, float]:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    if args.child:
        result = run_variant(args, args.child, Path(args.out or tempfile.mkdtemp()) / args.child)
        Path(args.result).write_text(json.dumps(result))
        return {}
    out = Path(args.out or tempfile.mkdtemp(prefix="ser-bench-fused-"))
    out.mkdir(parents=True, exist_ok=True)
    child_argv = without_options(argv, ("--out", "--json"))
    print(machine_line())
    cfg = config(args, "fused", out)
    prepared = prepare(args, cfg)  # fills the cache, so every child reads the same features
    print(
        f"K={min(args.folds, len(prepared.folds))} folds of {cfg.model.name}, {args.epochs} epochs, "
        f"{len(prepared.y)} clips of {list(prepared.x.shape[1:])}, batch {cfg.data.batch_size}, device "
        f"{args.device}, {args.threads} torch thread(s) per process; {args.repeats} interleaved rounds",
        flush=True,
    )
    runs = []
    for round_index in range(args.repeats):
        order = (
            args.variant_list[round_index % len(args.variant_list) :]
            + args.variant_list[: round_index % len(args.variant_list)]
        )
        for variant in order:
            run = spawn(variant, child_argv, out / f"round{round_index}")
            print(f"  round {round_index}: {variant:<10} {run['wall_s']:7.1f} s", flush=True)
            runs.append(run)
    rows = summarize(runs, args.variant_list)
    print()
    columns = ["variant", "path", "wall s", "fold-epochs/s", "peak RSS MB", "RSS over data MB"]
    columns += ["GPU peak MB", "max |dval UA|", "max |dtest UA|"]
    print(format_table(rows, columns))
    by = {r["variant"]: r for r in rows}
    ratios = {}
    if "fused" in by and "threads" in by:
        ratios["fused_vs_threads"] = safe_ratio(by["threads"]["wall s"], by["fused"]["wall s"])
    if "fused" in by and "sequential" in by:
        ratios["fused_vs_sequential"] = safe_ratio(by["sequential"]["wall s"], by["fused"]["wall s"])
    if "lockstep" in by and "threads" in by:
        ratios["lockstep_vs_threads"] = safe_ratio(by["threads"]["wall s"], by["lockstep"]["wall s"])
    if "threads" in by and "sequential" in by:
        ratios["threads_vs_sequential"] = safe_ratio(by["sequential"]["wall s"], by["threads"]["wall s"])
    if args.json:
        folds = min(args.folds, len(prepared.folds))
        measured = {"folds": folds, "epochs": args.epochs, "rows": rows, "runs": runs, "ratios": ratios}
        Path(args.json).write_text(json.dumps(measured, indent=2))
    print(ratios_line(ratios))
    return ratios


if __name__ == "__main__":
    main()
