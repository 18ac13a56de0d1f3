"""Time and memory to featurise a corpus: cold vs cached, librosa vs torch, and the handcrafted vector.

Every variant calls the library's own `load_features` / `load_waveforms` (ser/data/cache.py):
  decode          load_waveforms into an empty cache dir (decode, resample, crop/pad, normalise, write)
  torch           log-mel through the batched torch front end: cold (empty cache dir) and cached (again)
  librosa         the same log-mel per item with librosa (the reference backend): cold and cached
  cuda            the torch front end on --device cuda over the cached waveforms (when CUDA exists)
  handcrafted     the 193-value librosa vector per item: cold and cached
  egemaps         openSMILE's 88 eGeMAPS functionals per item (ser.data.smile): cold and cached

Each timed call ends by reading every value of the result (a memory-mapped cache hit is otherwise free).
Variants run interleaved (repeat 1 of every variant, then repeat 2, ...) and the table shows medians. By
default each run is its own subprocess, so its peak RSS (ru_maxrss) is its own; `--in-process` is quicker
but its memory columns are cumulative. Imports and a tiny warm-up call are outside the timed part.

    python bench/features.py                                   # built-in synthetic corpus
    python bench/features.py --data /work/shared/data/ravdess-dev-16k --corpus ravdess
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
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
from omegaconf import DictConfig

RESULT_PREFIX = "BENCH_JSON "
GROUPS = ("decode", "torch", "librosa", "cuda", "handcrafted", "egemaps")
SLOW = ("handcrafted", "egemaps")  # per-item feature sets: --handcrafted-repeats runs


@dataclass(frozen=True)
class Job:
    """One timed variant. `group` names the cache dir it shares: cold jobs start it empty, cached reuse it."""

    name: str
    group: str  # decode | torch | librosa | cuda | handcrafted
    state: str  # cold | cached
    kind: str = "logmel"  # logmel | handcrafted; unused by decode
    backend: str = "torch"

    @property
    def cache_group(self) -> str:
        return "torch" if self.group == "cuda" else self.group  # cuda reads the torch group's waveforms


JOBS = (
    Job("decode", "decode", "cold"),
    Job("torch-cold", "torch", "cold"),
    Job("torch-cached", "torch", "cached"),
    Job("cuda", "cuda", "cached"),
    Job("librosa-cold", "librosa", "cold", backend="librosa"),
    Job("librosa-cached", "librosa", "cached", backend="librosa"),
    Job("handcrafted-cold", "handcrafted", "cold", kind="handcrafted"),
    Job("handcrafted-cached", "handcrafted", "cached", kind="handcrafted"),
    Job("egemaps-cold", "egemaps", "cold", kind="egemaps"),
    Job("egemaps-cached", "egemaps", "cached", kind="egemaps"),
)
JOB_BY_NAME = {job.name: job for job in JOBS}
DESCRIPTIONS = {
    "decode": "load_waveforms (decode only)",
    "torch": "logmel, torch backend (CPU)",
    "librosa": "logmel, librosa backend",
    "cuda": "logmel, torch front end on CUDA",
    "handcrafted": "handcrafted 193-vector (librosa)",
    "egemaps": "eGeMAPS 88 functionals (openSMILE)",
}


# --------------------------------------------------------------------------------------- measuring
def current_rss_mb() -> float:
    """Resident set now (Linux /proc), else the peak so far: the base a variant's growth is measured from."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return maxrss_mb()


def cpu_seconds() -> float:
    """User + system CPU time of this process, all threads: the work done, less sensitive to load."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def touch(x: np.ndarray) -> float:
    """Read every value (float64 sum, no full copy), as training will; a cache hit is mmap until then."""
    return float(np.sum(x, dtype=np.float64))


def warm_up(job: Job, cfg: DictConfig, device: str, first_path: str) -> None:
    """A tiny call through the same code, so lazy imports and one-time set-up are not timed."""
    import torch
    from tqdm.auto import tqdm  # noqa: F401  (imported by the cache's progress helper on first use)

    from ser.data.audio import load_audio
    from ser.data.features import handcrafted_features, librosa_features, make_frontend

    sr = int(cfg.data.audio.sample_rate)
    load_audio(first_path, sample_rate=sr)  # soundfile/libsndfile set-up, not the corpus's decode
    wave = np.random.default_rng(0).standard_normal(sr // 2).astype(np.float32) * 0.1
    if job.group in ("torch", "cuda"):
        where = device if job.group == "cuda" else "cpu"
        frontend = make_frontend(cfg.data.features, sr, "logmel").to(where)
        with torch.inference_mode():
            frontend(torch.from_numpy(wave)[None].to(where))
    elif job.group == "librosa":
        librosa_features(wave, cfg.data.features, sr, "logmel")
    elif job.group == "handcrafted":
        handcrafted_features(wave, sr)
    elif job.group == "egemaps":
        from ser.data.smile import extractor, smile_vector

        smile_vector(extractor("egemaps"), wave, sr)


def device_features(waves: np.ndarray, cfg: DictConfig, device: str, batch: int = 64) -> np.ndarray:
    """The torch front end on `device`: host waveforms in, host features out (both copies timed)."""
    import torch

    from ser.data.features import make_frontend

    frontend = make_frontend(cfg.data.features, int(cfg.data.audio.sample_rate), "logmel").to(device).eval()
    parts = []
    with torch.inference_mode():
        for start in range(0, len(waves), batch):
            chunk = torch.from_numpy(np.array(waves[start : start + batch], dtype=np.float32)).to(device)
            parts.append(frontend(chunk).cpu().numpy())
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return np.concatenate(parts)


def run_job(job: Job, cfg: DictConfig, utterances: Sequence[Any], cache_dir: str, device: str) -> dict:
    """Run one variant once; wall seconds, feature seconds, rows and memory growth."""
    from ser.data.cache import load_features, load_waveforms

    warm_up(job, cfg, device, str(utterances[0].path))
    base_rss = current_rss_mb()
    cpu_start = cpu_seconds()
    start = time.perf_counter()
    compute = None
    if job.group == "decode":
        result = load_waveforms(utterances, cfg.data.audio, cache_dir=cache_dir, progress=False)
        x, from_cache = result.waves, result.from_cache
    elif job.group == "cuda":
        waves = load_waveforms(utterances, cfg.data.audio, cache_dir=cache_dir, progress=False).waves
        x, from_cache = device_features(waves, cfg, device), False
        compute = time.perf_counter() - start
    else:
        result = load_features(
            utterances,
            cfg.data.audio,
            cfg.data.features,
            job.kind,
            cache_dir=cache_dir,
            progress=False,
            backend=job.backend,
        )
        x, from_cache, compute = result.x, result.from_cache, result.compute_seconds
    touch(x)
    seconds = time.perf_counter() - start
    cpu = cpu_seconds() - cpu_start
    if from_cache != (job.state == "cached") and job.group != "cuda":
        raise RuntimeError(f"{job.name}: expected a cache {'hit' if job.state == 'cached' else 'miss'}")
    peak = maxrss_mb()
    return {
        "job": job.name,
        "seconds": seconds,
        "cpu": cpu,
        "compute": compute,
        "rows": int(len(x)),
        "shape": list(x.shape[1:]),
        "peak_rss_mb": peak,
        "rss_growth_mb": max(0.0, peak - base_rss),
    }


def run_isolated(job: Job, argv: Sequence[str], cache_dir: str) -> dict:
    """The same job in a fresh interpreter, so ru_maxrss is this job's alone."""
    script = str(Path(__file__).resolve())
    cmd = [sys.executable, script, *argv, "--worker", job.name, "--worker-cache", cache_dir]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    lines = [line for line in proc.stdout.splitlines() if line.startswith(RESULT_PREFIX)]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or proc.stdout)[-2000:]
        raise RuntimeError(f"{job.name} failed in its subprocess (exit {proc.returncode}):\n{tail}")
    return json.loads(lines[-1][len(RESULT_PREFIX) :])


# ------------------------------------------------------------------------------------------- driver
def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_data_args(parser)
    parser.add_argument(
        "--variants",
        default="decode,torch,librosa,cuda,handcrafted,egemaps",
        help=f"comma list of {', '.join(GROUPS)} (cuda runs only with --device cuda)",
    )
    parser.add_argument("--repeats", type=int, default=3, help="runs of each variant (medians reported)")
    parser.add_argument(
        "--handcrafted-repeats", type=int, default=1, help="handcrafted and egemaps are slow: fewer runs"
    )
    parser.add_argument("--device", default="cpu", help="device of the `cuda` variant (cuda | cuda:N)")
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    parser.add_argument("--in-process", action="store_true", help="no subprocesses (memory is cumulative)")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--worker-cache", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    unknown = sorted(set(_split(args.variants)) - set(GROUPS))
    if unknown:
        parser.error(f"--variants: unknown {unknown}; choose from {list(GROUPS)}")
    if args.repeats < 1 or args.handcrafted_repeats < 1:
        parser.error("--repeats and --handcrafted-repeats must be >= 1")
    return args


def _split(text: str) -> list[str]:
    return [part.strip() for part in str(text).split(",") if part.strip()]


def _setup(args: argparse.Namespace) -> tuple[DictConfig, Any]:
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = bench_config(args, ["trainer.progress_bar=false"])
    return cfg, select_dataset(cfg, args.limit)


def _jobs(args: argparse.Namespace) -> list[Job]:
    import torch

    wanted = set(_split(args.variants))
    if "cuda" in wanted and not (args.device.startswith("cuda") and torch.cuda.is_available()):
        if args.device.startswith("cuda"):
            print(f"note: --device {args.device} but CUDA is not available: the cuda variant is skipped")
        wanted.discard("cuda")
    if "cuda" in wanted:
        wanted.add("torch")  # it reads the waveforms the torch-cold job cached
    return [job for job in JOBS if job.group in wanted]


def summarize(jobs: Sequence[Job], results: dict[str, list[dict]]) -> list[dict[str, Any]]:
    rows = []
    for job in jobs:
        runs = results.get(job.name, [])
        if not runs:
            continue
        seconds = median([r["seconds"] for r in runs])
        computes = [r["compute"] for r in runs if r["compute"] is not None]
        rows.append(
            {
                "variant": f"{DESCRIPTIONS[job.group]} [{job.state}]",
                "runs": len(runs),
                "wall s": seconds,
                "cpu s": median([r["cpu"] for r in runs]),
                "features s": median(computes) if computes and job.state == "cold" else None,
                "files/s": runs[0]["rows"] / max(seconds, 1e-9),
                "peak RSS MB": median([r["peak_rss_mb"] for r in runs]),
                "+RSS MB": median([r["rss_growth_mb"] for r in runs]),
            }
        )
    return rows


def compute_ratios(results: dict[str, list[dict]]) -> dict[str, float]:
    def med(name: str, key: str = "seconds") -> float | None:
        values = [r[key] for r in results.get(name, []) if r[key] is not None]
        return median(values) if values else None

    ratios: dict[str, float] = {}
    pairs = {
        "cached_speedup": (med("torch-cold"), med("torch-cached")),
        "torch_vs_librosa_speedup": (med("librosa-cold", "compute"), med("torch-cold", "compute")),
        "torch_vs_librosa_cold_total": (med("librosa-cold"), med("torch-cold")),
        "handcrafted_cached_speedup": (med("handcrafted-cold"), med("handcrafted-cached")),
        "egemaps_cached_speedup": (med("egemaps-cold"), med("egemaps-cached")),
        "cuda_vs_cpu_features": (med("torch-cold", "compute"), med("cuda", "compute")),
    }
    for key, (num, den) in pairs.items():
        if num is not None and den is not None:
            ratios[key] = safe_ratio(num, den)
    return ratios


def main(argv: Sequence[str] | None = None) -> dict[str, float]:
    """Run the benchmark, print the table and the RATIOS line; returns the ratios."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    cfg, dataset = _setup(args)
    if args.worker:  # a subprocess of an isolated run: one job, one JSON line
        job = JOB_BY_NAME[args.worker]
        result = run_job(job, cfg, dataset.utterances, args.worker_cache, args.device)
        print(RESULT_PREFIX + json.dumps(result), flush=True)
        return {}

    jobs = _jobs(args)
    print(machine_line())
    print(
        f"data: {args.data or 'synthetic'} ({len(dataset.utterances)} files), clip "
        f"{cfg.data.audio.duration}s at {cfg.data.audio.sample_rate} Hz, log-mel {cfg.data.features.n_mels} "
        f"mels; {'in-process' if args.in_process else 'one subprocess per run'}"
    )
    results: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory(prefix="ser-bench-features-") as root:
        for rep in range(max(args.repeats, args.handcrafted_repeats)):
            dirs: dict[str, str] = {}
            for job in jobs:
                limit = args.handcrafted_repeats if job.group in SLOW else args.repeats
                if rep >= limit:
                    continue
                if job.state == "cold" or job.cache_group not in dirs:
                    dirs[job.cache_group] = tempfile.mkdtemp(prefix=f"{job.cache_group}-{rep}-", dir=root)
                cache_dir = dirs[job.cache_group]
                if args.in_process:
                    result = run_job(job, cfg, dataset.utterances, cache_dir, args.device)
                else:
                    result = run_isolated(job, argv, cache_dir)
                results.setdefault(job.name, []).append(result)
                print(f"  run {rep + 1}: {job.name} {result['seconds']:.2f}s", flush=True)
    rows = summarize(jobs, results)
    print()
    print(format_table(rows, list(rows[0])))
    print(
        "wall s: the whole load_features/load_waveforms call plus reading every value (median); cpu s: "
        "CPU time of all its threads; features s: feature computation alone (wall); +RSS: peak resident "
        "growth during the call"
    )
    ratios = compute_ratios(results)
    print(
        "cached_speedup: torch cold / cached wall; torch_vs_librosa_speedup: feature computation alone; "
        "torch_vs_librosa_cold_total: whole cold call including decoding"
    )
    print(ratios_line(ratios))
    return ratios


if __name__ == "__main__":
    main()
