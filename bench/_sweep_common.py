"""What the two sweep benchmarks share: the data arguments, writing and running a sweep file, a RATIOS
line with units, and a background sampler of the driver's and Ray's processes' memory.

Both scripts drive the real `run_sweep` (the path `python -m ser.sweep` takes) on sweep files written
into their output folder, so what they time is what a user's sweep pays.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
QUICKSTART = ROOT / "sweeps" / "quickstart.yaml"


# ------------------------------------------------------------------------------------------ arguments
def add_sweep_data_args(parser: argparse.ArgumentParser, speakers: int, per_label: int) -> None:
    """--data/--corpus for a real corpus, else the synthetic one; --set for any other base override."""
    group = parser.add_argument_group("data")
    group.add_argument("--data", default=None, help="corpus root (e.g. /work/shared/data/ravdess-dev-16k)")
    group.add_argument("--corpus", default="ravdess", help="adapter for --data (default: ravdess)")
    group.add_argument("--synthetic-speakers", type=int, default=speakers)
    group.add_argument("--synthetic-per-label", type=int, default=per_label)
    group.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override of the trials' base config (repeatable), e.g. --set model.channels=8",
    )
    group.add_argument("--out", default=None, help="folder for the sweeps' results (default: a temp dir)")
    group.add_argument("--verbose", action="store_true", help="show the sweeps' own progress and tables")


def quickstart_fixed() -> dict[str, Any]:
    """The shipped quickstart sweep's fixed settings: the size a first sweep on this machine has."""
    return dict(yaml.safe_load(QUICKSTART.read_text()).get("fixed") or {})


def data_section(args: argparse.Namespace, fixed: Mapping[str, Any]) -> tuple[list[str], dict[str, Any]]:
    """(base files, fixed keys) selecting the corpus: synthetic keys for the built-in corpus, else
    the `data/<corpus>` preset + data.root (the synthetic-only keys of `fixed` dropped)."""
    out = dict(fixed)
    if args.data is None:
        out["data.corpus"] = "synthetic"
        out["data.synthetic.speakers"] = int(args.synthetic_speakers)
        out["data.synthetic.per_label"] = int(args.synthetic_per_label)
        return [], out
    root = Path(args.data).expanduser()
    if not root.is_dir():
        raise SystemExit(f"--data {root}: not a folder")
    out = {k: v for k, v in out.items() if not k.startswith("data.synthetic.")}
    out["data.corpus"] = args.corpus
    out["data.root"] = str(root.resolve())
    from ser.config import PRESET_DIR

    preset = f"data/{args.corpus}"
    return ([preset] if (PRESET_DIR / f"{preset}.yaml").is_file() else []), out


def output_dir(args: argparse.Namespace, prefix: str) -> Path:
    """A fresh folder for this run's sweeps (run_sweep refuses to overwrite an existing sweep)."""
    parent = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix=f"ser-bench-{prefix}-"))
    out = parent / datetime.now().strftime("run-%Y%m%d-%H%M%S-%f")
    out.mkdir(parents=True)
    return out


def trial_cpus(concurrency: int) -> float:
    """CPUs per trial so `concurrency` trials fit Ray's default CPU count (one per core) at once."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return min(1.0, cores / max(1, concurrency))


# ---------------------------------------------------------------------------------------- running
def write_sweep_file(
    folder: Path,
    name: str,
    base: Sequence[str],
    fixed: Mapping[str, Any],
    space: Mapping[str, Any],
    scheduler: Mapping[str, Any],
    concurrency: int,
    seed: int = 0,
) -> Path:
    """A sweep YAML as a user would write it; W&B off, results under `folder`."""
    body = {
        "name": name,
        "base": list(base),
        "fixed": dict(fixed),
        "space": dict(space),
        "metric": "val/uar",
        "mode": "max",
        "num_samples": 1,
        "seed": seed,
        "scheduler": dict(scheduler),
        "resources": {"cpu": trial_cpus(concurrency)},
        "max_concurrent_trials": int(concurrency),
        "wandb": {"enabled": False},
        "storage_path": str(folder),
    }
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(body, sort_keys=False))
    return path


def run_sweep_file(path: Path, overrides: Sequence[str], verbose: bool) -> tuple[dict[str, Any], float]:
    """run_sweep on the file; returns its summary and the wall seconds of the whole call."""
    from rich.console import Console

    from ser.sweep.run import run_sweep
    from ser.sweep.spec import load_sweep

    plan = load_sweep(path, list(overrides))
    start = time.perf_counter()
    result = run_sweep(plan, wandb=False, console=Console(stderr=True, quiet=not verbose))
    return result, time.perf_counter() - start


def start_ray() -> bool:
    """Start Ray before the first sweep, as `run_sweep` would (same environment and arguments), so its
    start-up is not charged to whichever sweep runs first; returns whether Ray was already running."""
    import ray

    from ser.sweep.run import _set_ray_env

    if ray.is_initialized():
        return True
    _set_ray_env()
    ray.init(include_dashboard=False, configure_logging=True, logging_level="ERROR", log_to_driver=False)
    return False


def shutdown_ray_if_started(was_running: bool) -> None:
    """Leave Ray as the caller found it: a script started from a shell ends its own Ray session."""
    import ray

    if not was_running and ray.is_initialized():
        ray.shutdown()


# ----------------------------------------------------------------------------------------- output
def ratios_line(values: Mapping[str, tuple[float, str]]) -> str:
    """`RATIOS a=0.29x rank=2 overhead_s=4.1`: dimensionless ratios carry an `x`, counts and seconds
    do not; one line a reader or a test can grep."""

    def fmt(value: float, unit: str) -> str:
        if unit == "rank":
            return f"{value:.0f}"
        text = f"{value:.2f}" if abs(value) >= 0.01 or value == 0 else f"{value:.2g}"
        return text + ("x" if unit == "x" else "")

    return "RATIOS " + " ".join(f"{key}={fmt(v, unit)}" for key, (v, unit) in values.items())


def report_ratios(values: Mapping[str, tuple[float, str]]) -> dict[str, float]:
    """Print the RATIOS line and return the bare values (what `main` of each script returns)."""
    print(ratios_line(values))
    return {key: value for key, (value, _) in values.items()}


# ----------------------------------------------------------------------------------------- memory
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
TRIAL_TITLE = "ray::ImplicitFunc"  # Ray's process title of a Tune function trainable's actor


def _boot_time() -> float:
    with open("/proc/stat") as handle:
        for line in handle:
            if line.startswith("btime "):
                return float(line.split()[1])
    return 0.0


BOOT_TIME = _boot_time()


def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, start time as a Unix timestamp) from /proc/<pid>/stat."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[1]), BOOT_TIME + int(fields[19]) / CLOCK_TICKS


def _title(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return handle.read().split(b"\0")[0].decode(errors="replace").strip()
    except OSError:
        return ""


def _rollup(pid: int) -> dict[str, int] | None:
    """Rss, Pss and USS (private clean + dirty) in KiB from /proc/<pid>/smaps_rollup."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as handle:
            text = handle.read()
    except OSError:
        return None
    kb: dict[str, int] = {}
    for line in text.splitlines()[1:]:
        parts = line.split()
        if len(parts) >= 2 and parts[0].endswith(":"):
            kb[parts[0][:-1]] = int(parts[1])
    return {
        "rss": kb.get("Rss", 0),
        "pss": kb.get("Pss", 0),
        "uss": kb.get("Private_Clean", 0) + kb.get("Private_Dirty", 0),
    }


def _shm_kb(pid: int) -> tuple[int, int]:
    """(resident, private) KiB in shared-memory mappings: Ray's object store lives in /dev/shm, and a
    store page that only this process maps counts as private, so USS alone would hide the sharing."""
    rss = private = 0
    in_shm = False
    try:
        with open(f"/proc/{pid}/smaps") as handle:
            for line in handle:
                head = line.split(None, 1)[0]
                if not head.endswith(":"):  # a mapping's header line: address perms offset dev inode path
                    parts = line.split()
                    in_shm = len(parts) > 5 and (parts[5].startswith("/dev/shm") or "plasma" in parts[5])
                elif in_shm and head == "Rss:":
                    rss += int(line.split()[1])
                elif in_shm and head in ("Private_Clean:", "Private_Dirty:"):
                    private += int(line.split()[1])
    except OSError:
        return 0, 0
    return rss, private


@dataclass
class ProcessRecord:
    """One process seen under the driver: when it lived and its peak memory (KiB)."""

    pid: int
    title: str
    started: float
    first_seen: float
    last_seen: float
    peak_rss: int = 0
    peak_pss: int = 0
    peak_uss: int = 0
    peak_shm_rss: int = 0
    peak_uss_no_shm: int = 0  # private memory outside the object store: the trial's own copies
    titles: set[str] = field(default_factory=set)
    first_as_trial: float | None = None  # first sample titled as a trial: imports done, actor created

    @property
    def is_trial(self) -> bool:
        return any(t.startswith(TRIAL_TITLE) for t in self.titles)


class MemorySampler:
    """Samples the driver and every process below it (Ray's gcs/raylet/agents and the trial workers)
    in a background thread: per-process peaks, and the peak of the summed PSS (shared pages counted
    once, split between the processes mapping them) over the whole tree."""

    def __init__(self, interval: float = 0.5) -> None:
        self.interval = interval
        self.records: dict[int, ProcessRecord] = {}
        self.peak_total_pss = 0  # KiB, driver + all descendants
        self.peak_trials_pss = 0  # KiB, trial workers only
        self.peak_trials = 0  # most trial workers alive at once
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="memory-sampler", daemon=True)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _tree(self) -> list[int]:
        parents: dict[int, list[int]] = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                info = _stat(int(entry))
                if info is not None:
                    parents.setdefault(info[0], []).append(int(entry))
        tree, todo = [], [os.getpid()]
        while todo:
            pid = todo.pop()
            tree.append(pid)
            todo.extend(parents.get(pid, []))
        return tree

    def sample(self) -> None:
        now = time.time()
        total = trials_pss = trials = 0
        for pid in self._tree():
            mem = _rollup(pid)
            info = _stat(pid)
            if mem is None or info is None:
                continue
            title = _title(pid)
            rec = self.records.get(pid)
            if rec is None or abs(rec.started - info[1]) > 1.0:  # new process (or a reused pid)
                rec = self.records[pid] = ProcessRecord(pid, title, info[1], now, now)
            rec.last_seen = now
            rec.titles.add(title)
            rec.peak_rss = max(rec.peak_rss, mem["rss"])
            rec.peak_pss = max(rec.peak_pss, mem["pss"])
            rec.peak_uss = max(rec.peak_uss, mem["uss"])
            total += mem["pss"]
            if title.startswith(TRIAL_TITLE):
                if rec.first_as_trial is None:
                    rec.first_as_trial = now
                shm_rss, shm_private = _shm_kb(pid)
                rec.peak_shm_rss = max(rec.peak_shm_rss, shm_rss)
                rec.peak_uss_no_shm = max(rec.peak_uss_no_shm, mem["uss"] - shm_private)
                trials_pss += mem["pss"]
                trials += 1
        self.peak_total_pss = max(self.peak_total_pss, total)
        self.peak_trials_pss = max(self.peak_trials_pss, trials_pss)
        self.peak_trials = max(self.peak_trials, trials)
        self.samples += 1

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def trial_records(self, pids: Sequence[int] = ()) -> list[ProcessRecord]:
        """The trial workers: the given pids (from the trials' results), else those titled as trials."""
        wanted = set(pids)
        return [r for r in self.records.values() if (r.pid in wanted if wanted else r.is_trial)]
