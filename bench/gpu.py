"""What a GPU changes, measured in one command (bench/gpu.sh): writes gpu.json and gpu.md (a markdown table).

Sections, each in its own process with a time cap so one slow part cannot eat the others' budget:

pipeline    whole-epoch time of ser's cached, device-resident batches vs the per-item librosa DataLoader
            (bench/pipeline.py, its warm epochs; target: cached >= 10x faster per epoch)
fused       K=6 folds fused vs today's lockstep threads vs one after another (bench/fused.py; target:
            fused >= 5x the throughput of separate folds)
packing     1 / 2 / 4 / 8 identical trials packed on one GPU (`resources.gpu: 1/N`, one driver process
            per level): aggregate trial-epochs per second, and how it scales over one trial
quickstart  wall time of sweeps/quickstart.yaml with its 8 trials packed on the GPU (gpu 1/8 each)
cnn_depth   wall time of sweeps/cnn_depth.yaml (24 configs) with 6-fold CV per trial on dev RAVDESS
            (needs the corpus path; target: under 10 minutes); stopped at the remaining budget
utilisation nvidia-smi sampled every 0.5 s while each section runs: mean and peak GPU utilisation, peak
            memory

The sections that sweep share one Ray session, started here and joined by each section's process through
RAY_ADDRESS, so no section pays a cluster start-up (10-30 s on a loaded machine) of its own.

    bash bench/gpu.sh /work/shared/data/ravdess-dev-16k      # on a GPU machine, < 8 minutes
    bash bench/gpu.sh --dry-run                             # everything tiny, on CPU (what the tests run)
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RATIO = re.compile(r"(\w+)=([0-9.eE+-]+)x?")
# Per-section caps (seconds) of the full run; cnn_depth gets what is left of --budget-min.
CAPS = {"pipeline": 90, "fused": 150, "packing": 150, "quickstart": 90}
TINY_DATA = [
    "--synthetic-speakers=4",
    "--synthetic-per-label=2",
    "--synthetic-labels=4",
    "--synthetic-duration=1.0",
    "--set=data.audio.duration=1.0",
]
TINY_MODEL = ["--set=model.depth=2", "--set=model.channels=8", "--set=model.hidden=16"]
TINY_SWEEP = [
    "data.synthetic.speakers=4",
    "data.synthetic.per_label=2",
    "data.synthetic.labels=[neutral,happy,sad,angry]",
    "data.audio.duration=1.0",
    "data.folds=4",
    "model.channels=8",
    "sweep.num_samples=2",
    "sweep.scheduler.max_t=1",
    "sweep.scheduler.grace_period=1",
]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("ravdess", nargs="?", default=None, help="dev RAVDESS root (for cnn_depth and data)")
    parser.add_argument("--dry-run", action="store_true", help="everything tiny on CPU (a smoke test)")
    parser.add_argument("--budget-min", type=float, default=8.0, help="whole run, minutes")
    parser.add_argument("--out", default=None, help="results folder (default: bench/results/gpu-<time>)")
    parser.add_argument("--sections", default="pipeline,fused,packing,quickstart,cnn_depth")
    parser.add_argument("--levels", default="1,2,4,8", help="trials packed per GPU")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)  # one packing level
    parser.add_argument("--level", type=int, default=1, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


# ----------------------------------------------------------------------------------- utilisation
@dataclass
class GpuSampler:
    """`nvidia-smi -lms 500` in the background; each sample is filed under the section running then."""

    section: str = "start"
    samples: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    available: bool = False
    _proc: subprocess.Popen | None = None
    _thread: threading.Thread | None = None

    def __enter__(self) -> GpuSampler:
        if shutil.which("nvidia-smi") is None:
            return self
        query = ["--query-gpu=utilization.gpu,memory.used", "--format=csv,noheader,nounits", "-lms", "500"]
        self._proc = subprocess.Popen(["nvidia-smi", *query], stdout=subprocess.PIPE, text=True)
        self.available = True
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()
        return self

    def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        for line in self._proc.stdout:
            parts = [p.strip() for p in line.split(",")]
            try:
                util, memory = float(parts[0]), float(parts[1])
            except (ValueError, IndexError):
                continue
            self.samples.setdefault(self.section, []).append((util, memory))

    def __exit__(self, *exc: object) -> None:
        if self._proc is not None:
            self._proc.terminate()
            self._proc.wait(timeout=10)

    def summary(self, section: str) -> dict[str, float] | None:
        rows = self.samples.get(section)
        if not rows:
            return None
        utils = [u for u, _ in rows]
        return {
            "util_mean": sum(utils) / len(utils),
            "util_max": max(utils),
            "memory_max_mb": max(m for _, m in rows),
            "samples": len(rows),
        }


# ---------------------------------------------------------------------------------------- helpers
def run_capped(cmd: Sequence[str], cap: float, log: Path) -> tuple[int | None, float]:
    """Run `cmd` (output to `log`) for at most `cap` seconds; (exit code or None if stopped, seconds)."""
    start = time.perf_counter()
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "RAY_worker_niceness": "0"}
    with log.open("w") as handle:
        proc = subprocess.Popen(
            list(cmd), cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            code: int | None = proc.wait(timeout=max(cap, 1.0))
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 15)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 9)
                proc.wait()
            code = None
    return code, time.perf_counter() - start


def ratios_of(log: Path) -> dict[str, float]:
    lines = [line for line in log.read_text(errors="replace").splitlines() if line.startswith("RATIOS ")]
    return {k: float(v) for k, v in RATIO.findall(lines[-1])} if lines else {}


def tail(log: Path, n: int = 15) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-n:])


def sweep_counts(folder: Path) -> dict[str, int]:
    """Trials in a sweep's leaderboard by status (completed / stopped early / error)."""
    counts: dict[str, int] = {}
    for board in folder.glob("**/leaderboard.csv"):
        with board.open() as handle:
            for row in csv.DictReader(handle):
                counts[row.get("status", "?")] = counts.get(row.get("status", "?"), 0) + 1
    return counts


@dataclass
class Context:
    args: argparse.Namespace
    out: Path
    device: str
    deadline: float
    sampler: GpuSampler

    def cap(self, section: str) -> float:
        """The section's share of the budget; a dry run (a smoke test on a CPU, often a busy one) is held
        to the whole budget only, as its sections' timings are not what it checks."""
        left = self.deadline - time.monotonic()
        return max(5.0, left if self.args.dry_run else min(CAPS.get(section, left), left))

    def data_args(self) -> list[str]:
        if self.args.dry_run or not self.args.ravdess:
            return list(TINY_DATA) if self.args.dry_run else []
        return [f"--data={self.args.ravdess}", "--corpus=ravdess"]


# --------------------------------------------------------------------------------------- sections
def section_pipeline(ctx: Context) -> dict[str, Any]:
    log, result = ctx.out / "pipeline.log", ctx.out / "pipeline.json"
    extra = (
        [*TINY_MODEL, "--epochs=2", "--workers=0"] if ctx.args.dry_run else ["--epochs=3", "--workers=0,8"]
    )
    cmd = [sys.executable, str(BENCH / "pipeline.py"), *ctx.data_args(), f"--device={ctx.device}", *extra]
    code, seconds = run_capped([*cmd, f"--json={result}"], ctx.cap("pipeline"), log)
    if code != 0 or not result.is_file():
        return {"error": f"exit {code} after {seconds:.0f} s", "log": tail(log)}
    data = json.loads(result.read_text())
    rows = {r["variant"]: r for r in data["rows"]}
    ser = next(r for name, r in rows.items() if name.startswith("ser"))
    baselines = [r for name, r in rows.items() if not name.startswith("ser")]
    fastest = min(baselines, key=lambda r: r["warm epoch s"])
    return {
        "seconds": seconds,
        "cached_epoch_s": ser["warm epoch s"],
        "per_item_epoch_s": fastest["warm epoch s"],
        "per_item_variant": fastest["variant"],
        "epoch_speedup": data["ratios"]["epoch_speedup"],
        "data_side_speedup": data["ratios"]["data_side_speedup"],
    }


def section_fused(ctx: Context) -> dict[str, Any]:
    log, result = ctx.out / "fused.log", ctx.out / "fused.json"
    if ctx.args.dry_run:
        # fused against the trial path (threads) only: each variant is a fresh interpreter, and the dry run
        # checks the script and its table, not the other two variants (tests/test_fused.py covers those)
        extra = [*TINY_DATA, *TINY_MODEL, "--set=data.folds=4", "--folds=2", "--epochs=1"]
        extra += ["--variants=threads,fused"]
    else:
        extra = [*ctx.data_args(), "--folds=6", "--epochs=3", "--threads=2"]
    cmd = [sys.executable, str(BENCH / "fused.py"), *extra, f"--device={ctx.device}", "--repeats=1"]
    code, seconds = run_capped(
        [*cmd, f"--json={result}", f"--out={ctx.out / 'fused_runs'}"], ctx.cap("fused"), log
    )
    if code != 0 or not result.is_file():
        return {"error": f"exit {code} after {seconds:.0f} s", "log": tail(log)}
    data = json.loads(result.read_text())
    rows = {r["variant"]: r for r in data["rows"]}
    return {
        "seconds": seconds,
        "folds": data.get("folds"),
        **{f"{v}_fold_epochs_per_s": rows[v]["fold-epochs/s"] for v in rows},
        **{f"{v}_gpu_peak_mb": rows[v]["GPU peak MB"] for v in rows},
        "max_val_uar_gap": max(r["max |dval UA|"] for r in rows.values()),
        **data["ratios"],
    }


def packing_child(args: argparse.Namespace) -> None:
    """One packing level, in its own process: N copies of one trial (seeds 0..N-1) at once, gpu 1/N."""
    sys.path.insert(0, str(BENCH))
    from _sweep_common import run_sweep_file, shutdown_ray_if_started, start_ray, write_sweep_file

    n, out = args.level, Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.dry_run:
        fixed: dict[str, Any] = {k: yaml_value(v) for k, v in (o.split("=", 1) for o in TINY_SWEEP[:6])}
        epochs = 1
    else:
        fixed = {"data.corpus": "ravdess", "data.root": args.ravdess} if args.ravdess else {}
        epochs = 4
    fixed["trainer.accelerator"] = "cpu" if args.dry_run else "gpu"
    space = {"trainer.seed": {"grid": list(range(n))}}
    path = write_sweep_file(out, f"pack{n}", [], fixed, space, {"name": "fifo", "max_t": epochs}, n)
    cores = len(os.sched_getaffinity(0))
    overrides = [f"sweep.resources.cpu={max(0.25, min(2.0, cores / n)):g}"]
    if not args.dry_run:
        overrides.append(f"sweep.resources.gpu={1.0 / n:g}")
    was_running = start_ray()
    try:
        summary, wall = run_sweep_file(path, overrides, verbose=False)
    finally:
        shutdown_ray_if_started(was_running)
    epochs_done = sum(int(r.get("epochs") or 0) for r in summary["rows"])
    print(json.dumps({"level": n, "wall_s": wall, "trial_epochs": epochs_done}))


def yaml_value(text: str) -> Any:
    import yaml

    return yaml.safe_load(text)


def section_packing(ctx: Context) -> dict[str, Any]:
    levels = [int(x) for x in ctx.args.levels.split(",") if x]
    if ctx.args.dry_run:
        levels = levels[:2]
    cap = ctx.cap("packing")
    result: dict[str, Any] = {"levels": {}}
    for n in levels:
        log = ctx.out / f"packing_{n}.log"
        left = cap - sum(v.get("seconds", 0) for v in result["levels"].values())
        cmd = [sys.executable, str(BENCH / "gpu.py"), "--child=packing", f"--level={n}"]
        cmd += [f"--out={ctx.out / f'packing_{n}'}", *(["--dry-run"] if ctx.args.dry_run else [])]
        cmd += [ctx.args.ravdess] if ctx.args.ravdess and not ctx.args.dry_run else []
        code, seconds = run_capped(cmd, left, log)
        lines = [line for line in log.read_text(errors="replace").splitlines() if line.startswith('{"level"')]
        if code != 0 or not lines:
            result["levels"][str(n)] = {"error": f"exit {code} after {seconds:.0f} s", "seconds": seconds}
            continue
        measured = json.loads(lines[-1])
        rate = measured["trial_epochs"] / max(measured["wall_s"], 1e-9)
        result["levels"][str(n)] = {**measured, "trial_epochs_per_s": rate, "seconds": seconds}
    one = result["levels"].get("1", {}).get("trial_epochs_per_s")
    for value in result["levels"].values():
        if one and "trial_epochs_per_s" in value:
            value["vs_one_trial"] = value["trial_epochs_per_s"] / one
    return result


def section_sweep(ctx: Context, name: str) -> dict[str, Any]:
    log, folder = ctx.out / f"{name}.log", ctx.out / f"sweep_{name}"
    cmd = [sys.executable, "-m", "ser.sweep", f"sweeps/{name}.yaml", "--no-wandb"]
    cmd += [f"sweep.storage_path={folder}", f"sweep.name={name}"]
    if name == "cnn_depth":
        if ctx.args.dry_run:
            return {"skipped": "dry run (cnn_depth needs dev RAVDESS; run it on a GPU machine)"}
        if not ctx.args.ravdess:
            return {"skipped": "no dev RAVDESS path given (bash bench/gpu.sh /path/to/ravdess-dev-16k)"}
        cmd += [f"data.root={ctx.args.ravdess}", "sweep.cv.folds=6", "sweep.resources.gpu=0.125"]
        cmd += ["sweep.resources.cpu=2", "sweep.max_concurrent_trials=8"]
    elif ctx.args.dry_run:
        cmd += [*TINY_SWEEP, "sweep.resources.cpu=0.5", "sweep.max_concurrent_trials=2"]
    else:
        cmd += ["sweep.resources.gpu=0.125", "sweep.max_concurrent_trials=8"]
    cap = ctx.cap(name)
    code, seconds = run_capped(cmd, cap, log)
    counts = sweep_counts(folder)
    out: dict[str, Any] = {"seconds": seconds, "trials": counts, "finished": code == 0}
    if code is None:
        out["note"] = (
            f"stopped at the budget ({cap:.0f} s) with {sum(counts.values())} trials in the leaderboard"
        )
    elif code != 0:
        out["error"] = f"exit {code}"
        out["log"] = tail(log)
    return out


SECTIONS = {
    "pipeline": section_pipeline,
    "fused": section_fused,
    "packing": section_packing,
    "quickstart": lambda ctx: section_sweep(ctx, "quickstart"),
    "cnn_depth": lambda ctx: section_sweep(ctx, "cnn_depth"),
}


# ---------------------------------------------------------------------------------------- report
def _fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def markdown(report: dict[str, Any]) -> str:
    """The table README's performance section takes: measure, result, target."""
    s = report["sections"]
    rows: list[tuple[str, str, str]] = []

    def util(name: str) -> str:
        u = report["utilisation"].get(name)
        return (
            "n/a"
            if not u
            else f"{u['util_mean']:.0f}% mean, {u['util_max']:.0f}% peak, {u['memory_max_mb']:.0f} MB"
        )

    def problem(section: dict[str, Any]) -> str | None:
        return section.get("skipped") or section.get("error")

    p = s.get("pipeline", {})
    if problem(p):
        rows.append(
            ("whole epoch: cached device-resident vs per-item librosa DataLoader", problem(p), ">= 10x")
        )
    else:
        cached, per_item = _fmt(p["cached_epoch_s"], 3), _fmt(p["per_item_epoch_s"], 3)
        rows.append(
            (
                "whole epoch: cached device-resident vs per-item librosa DataLoader",
                f"{cached} s vs {per_item} s: **{p['epoch_speedup']:.1f}x**",
                ">= 10x",
            )
        )
    f = s.get("fused", {})
    k = f.get("folds") or 6
    if problem(f):
        rows.append((f"fused K={k} vs separate folds", problem(f), ">= 5x"))
    else:
        rows.append(
            (
                f"fused K={k} vs lockstep threads / sequential (fold-epochs/s)",
                f"{_fmt(f.get('fused_fold_epochs_per_s'))} vs {_fmt(f.get('threads_fold_epochs_per_s'))} / "
                f"{_fmt(f.get('sequential_fold_epochs_per_s'))}: **{_fmt(f.get('fused_vs_threads'))}x** / "
                f"{_fmt(f.get('fused_vs_sequential'))}x (val UA gap {_fmt(f.get('max_val_uar_gap'), 4)})",
                ">= 5x",
            )
        )
    for n, level in s.get("packing", {}).get("levels", {}).items():
        what = f"{n} trial(s) packed on one GPU (gpu {1 / int(n):g} each)"
        if report["dry_run"]:
            what = f"{n} trial(s) at once on the CPU"
        if level.get("error"):
            rows.append((what, level["error"], ""))
            continue
        rate, scale = level["trial_epochs_per_s"], _fmt(level.get("vs_one_trial"))
        rows.append((what, f"{rate:.2f} trial-epochs/s ({scale}x one trial)", ""))
    for name, target in (("quickstart", ""), ("cnn_depth", "< 600 s")):
        sweep = s.get(name, {})
        text = (
            problem(sweep) or sweep.get("note") or f"{sweep['seconds']:.0f} s, trials {sweep.get('trials')}"
        )
        rows.append((f"sweep {name} wall time", text, target))
    for name in SECTIONS:
        if name in s and not s[name].get("skipped"):
            rows.append((f"GPU utilisation during {name}", util(name), ""))
    kind = "dry run" if report["dry_run"] else "full run"
    head = f"GPU benchmark {report['started']} on {report['device_name']} ({kind})"
    lines = [head, "", "| measure | result | target |", "|---|---|---|"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    return "\n".join(lines) + "\n"


def device_name(dry_run: bool) -> str:
    if dry_run:
        return "CPU"
    try:
        import torch

        if torch.cuda.is_available():
            return torch.cuda.get_device_name(0)
    except Exception:  # noqa: BLE001 - a name for the report only
        pass
    return "no CUDA device"


RAY_SECTIONS = {"packing", "quickstart", "cnn_depth"}


class SharedRay:
    """One local Ray session for the sections that sweep, started before the first of them (not during
    the sections that do not use it); their processes join it (`ray.init` reads RAY_ADDRESS). A session
    the caller already points at (RAY_ADDRESS set) is used as it is."""

    def __init__(self) -> None:
        self.started = False

    def ensure(self) -> None:
        if self.started or os.environ.get("RAY_ADDRESS"):
            return
        sys.path.insert(0, str(BENCH))
        import ray
        from _sweep_common import start_ray

        os.environ["RAY_worker_niceness"] = "0"  # read by the raylet at start: trials at full priority
        self.started = not start_ray()
        os.environ["RAY_ADDRESS"] = ray.get_runtime_context().gcs_address

    def __enter__(self) -> SharedRay:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.started:
            import ray

            os.environ.pop("RAY_ADDRESS", None)
            ray.shutdown()


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    if args.child == "packing":
        packing_child(args)
        return {}
    started = datetime.now()
    out = Path(args.out or BENCH / "results" / f"gpu-{started:%Y%m%d-%H%M%S}")
    out.mkdir(parents=True, exist_ok=True)
    name = device_name(args.dry_run)
    if not args.dry_run and name == "no CUDA device":
        raise SystemExit("no CUDA GPU visible to torch; run with --dry-run to check the script on CPU")
    device = "cpu" if args.dry_run else "cuda"
    wanted = [s for s in args.sections.split(",") if s]
    unknown = sorted(set(wanted) - set(SECTIONS))
    if unknown:
        raise SystemExit(f"--sections: unknown {unknown}; choose from {list(SECTIONS)}")
    report: dict[str, Any] = {
        "started": started.isoformat(timespec="seconds"),
        "dry_run": args.dry_run,
        "device_name": name,
        "ravdess": args.ravdess,
        "sections": {},
        "utilisation": {},
    }
    with GpuSampler() as sampler, SharedRay() as shared:
        ctx = Context(args, out, device, time.monotonic() + 60 * args.budget_min, sampler)
        for section in wanted:
            sampler.section = section
            print(f"[{datetime.now():%H:%M:%S}] {section} ...", flush=True)
            try:
                if section in RAY_SECTIONS and not (section == "cnn_depth" and args.dry_run):
                    shared.ensure()
                report["sections"][section] = SECTIONS[section](ctx)
            except Exception as exc:  # noqa: BLE001 - one failed section must not lose the others
                report["sections"][section] = {"error": f"{type(exc).__name__}: {exc}"}
            report["utilisation"][section] = sampler.summary(section)
            (out / "gpu.json").write_text(json.dumps(report, indent=2, default=str))
    report["wall_s"] = (datetime.now() - started).total_seconds()
    (out / "gpu.json").write_text(json.dumps(report, indent=2, default=str))
    table = markdown(report)
    (out / "gpu.md").write_text(table)
    print(table)
    print(f"results: {out / 'gpu.json'} and {out / 'gpu.md'}")
    return report


if __name__ == "__main__":
    main()
