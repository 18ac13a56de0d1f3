"""Per-epoch cost of feeding the default CNN: the earlier projects' per-item pipeline vs ser's cached tensors.

baseline: a torch `Dataset` whose `__getitem__` runs `librosa.load` + crop/pad + peak normalisation +
          librosa melspectrogram/power_to_db + utterance standardisation, through a standard DataLoader
          (`--workers 0,2`: one row per worker count), so every epoch decodes and featurises again.
ser:      `prepare_data` (`load_features` through the on-disk cache) -> `SERDataModule`'s device-resident
          `TensorBatches`: index slices of one tensor. Its first epoch starts from an EMPTY cache dir, so
          it pays decoding and featurising the whole corpus (train, val and test) once.

Same rows (the fold's train split), same initial weights, same batch size, and the same plain loop
(forward + cross-entropy + backward + Adam step). "compute" is perf_counter around forward..step (with a
device sync on CUDA); "data" is the rest of the epoch's wall time. Variants run interleaved, epoch by
epoch, so a change in the machine's load hits all of them.

    python bench/pipeline.py                                   # built-in synthetic corpus
    python bench/pipeline.py --data /work/shared/data/ravdess-dev-16k --corpus ravdess
"""

from __future__ import annotations

import argparse
import copy
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from _common import (
    add_data_args,
    bench_config,
    format_table,
    machine_line,
    median,
    ratios_line,
    safe_ratio,
    select_dataset,
)
from omegaconf import DictConfig
from torch import nn
from torch.utils.data import DataLoader, Dataset


# ------------------------------------------------------------------------------------------ baseline
class LibrosaLogMelDataset(Dataset):
    """The earlier projects' pipeline: each item is read, cropped, featurised and normalised on access."""

    def __init__(self, paths: Sequence[str], labels: Sequence[int], cfg: DictConfig, kind: str) -> None:
        from ser.data.cache import n_samples_of

        self.paths, self.labels, self.kind = list(paths), list(labels), kind
        self.audio, self.features = cfg.data.audio, cfg.data.features
        self.n_samples = n_samples_of(self.audio)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        import librosa

        from ser.data.audio import fix_length, normalize_wave
        from ser.data.features import librosa_features

        sr = int(self.audio.sample_rate)
        wave, _ = librosa.load(self.paths[i], sr=sr, mono=True)
        wave = fix_length(wave, self.n_samples, crop=str(self.audio.crop))
        wave = normalize_wave(wave, self.audio.normalize)
        x = librosa_features(wave, self.features, sr, self.kind)  # [1, F, T]
        # Per item, in numpy: what FeatureNormalizer's `utterance` mode does on the device for ser.
        x = ((x - x.mean()) / max(float(x.std(ddof=1)), 1e-5)).astype(np.float32)
        return torch.from_numpy(x), self.labels[i]


# ---------------------------------------------------------------------------------------- training
@dataclass
class Epoch:
    total: float  # wall seconds of the whole epoch (for ser's cold epoch: cache build included)
    compute: float  # seconds inside forward + backward + optimizer step
    steps: int
    setup: float = 0.0  # part of `total` spent before the first batch was asked for (ser: cache build)

    @property
    def data(self) -> float:
        return self.total - self.compute


@dataclass
class Variant:
    """One way of feeding the model: its own copy of the network and optimizer, and its epochs."""

    name: str
    short: str  # for the per-epoch progress line
    model: nn.Module
    forward: Callable[[torch.Tensor], torch.Tensor]
    optimizer: torch.optim.Optimizer
    epochs: list[Epoch] = field(default_factory=list)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def train_epoch(
    variant: Variant, batches: Iterable[tuple[torch.Tensor, torch.Tensor]], device: torch.device
) -> tuple[float, int]:
    """One pass; returns (seconds in forward..step, steps). Moving a batch to the device is data time."""
    variant.model.train()
    compute, steps = 0.0, 0
    for x, y in batches:
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        _sync(device)
        start = time.perf_counter()
        loss = F.cross_entropy(variant.forward(x), y)
        variant.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        variant.optimizer.step()
        _sync(device)
        compute += time.perf_counter() - start
        steps += 1
    return compute, steps


def warm_up(model: nn.Module, shape: tuple[int, ...], n_classes: int, device: torch.device) -> None:
    """Two steps on a throwaway copy: the framework's one-time kernel set-up is no variant's cost."""
    twin = copy.deepcopy(model).to(device).train()
    optimizer = torch.optim.Adam(twin.parameters())
    generator = torch.Generator().manual_seed(0)
    x = torch.randn((8, *shape), generator=generator).to(device)
    y = torch.arange(8).remainder(n_classes).to(device)
    for _ in range(2):
        loss = F.cross_entropy(twin(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    _sync(device)


def read_files_once(paths: Iterable[str]) -> None:
    """Put every audio file in the OS page cache, so neither side pays the first disk read."""
    for path in paths:
        Path(path).read_bytes()


# ------------------------------------------------------------------------------------------ ser side
def ser_train_batches(cfg: DictConfig, dataset: Any, fold: int, device: torch.device):
    """prepare_data (through the configured cache dir) -> SERDataModule -> its train loader on `device`."""
    from ser.data.datamodule import SERDataModule, TensorBatches
    from ser.data.prepared import prepare_data

    prepared = prepare_data(cfg, progress=False, dataset=dataset)
    dm = SERDataModule(cfg, prepared, fold)
    # The DataModule asks its trainer for the device; a stand-in gives it ours without a Lightning loop.
    dm.trainer = SimpleNamespace(strategy=SimpleNamespace(root_device=device))
    loader = dm.train_dataloader()
    if not isinstance(loader, TensorBatches):
        print("warning: fold exceeds data.device_max_mb, ser fell back to a DataLoader")
    train_ids = [prepared.utterance_ids[i] for i in sorted(dm.train_idx)]
    return loader, train_ids, prepared.feature_seconds


# ------------------------------------------------------------------------------------------- driver
def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_data_args(parser)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    parser.add_argument("--epochs", type=int, default=3, help="epochs per variant (>= 2: one cold, warm)")
    parser.add_argument("--batch-size", type=int, default=0, help="default: data.batch_size (32)")
    parser.add_argument(
        "--workers",
        default="0,2" if cores >= 2 else "0",
        help="comma list of baseline DataLoader num_workers values, one baseline row each",
    )
    parser.add_argument("--fold", type=int, default=0)
    parser.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N")
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    parser.add_argument("--json", default=None, help="also write the table rows and ratios to this file")
    args = parser.parse_args(argv)
    if args.epochs < 2:
        parser.error("--epochs must be >= 2 (the first epoch is cold, the rest are warm)")
    return args


def summary_rows(variants: Sequence[Variant]) -> list[dict[str, Any]]:
    rows = []
    for v in variants:
        first, warm = v.epochs[0], v.epochs[1:]
        computes = [e.compute for e in v.epochs]  # the same work each epoch: its spread is the noise
        warm_total = median([e.total for e in warm])
        warm_data = median([e.data for e in warm])
        rows.append(
            {
                "variant": v.name,
                "epoch1 s": first.total,
                "epoch1 data s": first.data,
                "warm epoch s": warm_total,
                "warm data s": warm_data,
                "warm compute s": median([e.compute for e in warm]),
                "compute range": f"{min(computes):.1f}-{max(computes):.1f}",
                "data share": f"{100 * warm_data / warm_total:.0f}%",
                "steps": first.steps,
            }
        )
    return rows


def main(argv: Sequence[str] | None = None) -> dict[str, float]:
    """Run the benchmark, print the table and the RATIOS line; returns the ratios."""
    from ser.data.folds import speaker_folds, split_utterances
    from ser.data.prepared import resolve_feature_kind
    from ser.models.pipeline import build_classifier

    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit(f"--device {args.device}: CUDA is not available on this machine")
    extra = [f"data.batch_size={args.batch_size}"] if args.batch_size else []
    cfg = bench_config(args, [*extra, "trainer.progress_bar=false"])
    kind = resolve_feature_kind(cfg)
    if kind == "handcrafted" or cfg.data.features.normalize != "utterance":
        raise SystemExit("this benchmark compares spectrogram models with data.features.normalize=utterance")
    dataset = select_dataset(cfg, args.limit)
    utterances = dataset.utterances
    label_index = {label: i for i, label in enumerate(dataset.labels)}
    batch_size = int(cfg.data.batch_size)

    # The fold's train rows, from the same pure functions SERDataModule uses (checked against it below).
    genders = {u.speaker: u.gender for u in utterances}
    folds = speaker_folds(sorted(genders), cfg.data.folds, cfg.data.val_folds, cfg.data.fold_seed, genders)
    ys = [label_index[u.label] for u in utterances]
    train_idx, _, _ = split_utterances(utterances, folds[args.fold], ys, seed=cfg.data.fold_seed)
    train = [utterances[i] for i in train_idx]
    baseline_set = LibrosaLogMelDataset([u.path for u in train], [ys[i] for i in train_idx], cfg, kind)

    x0, _ = baseline_set[0]  # also warms librosa's lazy imports, outside any timing
    template, _ = build_classifier(cfg, tuple(x0.shape), dataset.labels, kind, waveform_mode=False)
    warm_up(template, tuple(x0.shape), len(dataset.labels), device)
    read_files_once(u.path for u in utterances)

    def variant(name: str, short: str, ser_side: bool) -> Variant:
        model = copy.deepcopy(template).to(device)  # identical initial weights for every variant
        forward = model if ser_side else model.net  # ser normalises on the device; baseline per item
        optimizer = torch.optim.Adam(model.parameters(), lr=float(cfg.optim.lr))
        return Variant(name, short, model, forward, optimizer)

    workers = [int(w) for w in str(args.workers).split(",") if w.strip()]
    baselines = [
        variant(f"baseline librosa DataLoader(num_workers={w})", f"baseline(w={w})", False) for w in workers
    ]
    ser = variant("ser cached features -> TensorBatches", "ser", True)
    generator = torch.Generator().manual_seed(int(cfg.trainer.seed))

    print(machine_line())
    print(
        f"data: {args.data or 'synthetic'} ({len(utterances)} files, fold {args.fold}: {len(train)} train "
        f"rows of {tuple(x0.shape)}), model {cfg.model.name}, batch {batch_size}, device {device}, "
        f"{args.epochs} epochs per variant, interleaved"
    )
    startup_hit = feature_seconds = float("nan")
    with tempfile.TemporaryDirectory(prefix="ser-bench-cache-") as cache:
        cfg.data.features.cache_dir = cache  # empty: the first ser epoch computes every feature
        ser_loader = None
        for epoch in range(args.epochs):
            start = time.perf_counter()
            if ser_loader is None:
                ser_loader, ser_ids, feature_seconds = ser_train_batches(cfg, dataset, args.fold, device)
                if sorted(ser_ids) != sorted(u.id for u in train):
                    raise RuntimeError("ser's train split differs from the baseline's: comparison void")
            setup = time.perf_counter() - start
            compute, steps = train_epoch(ser, ser_loader, device)
            ser.epochs.append(Epoch(time.perf_counter() - start, compute, steps, setup))
            for w, base in zip(workers, baselines):
                loader = DataLoader(
                    baseline_set,
                    batch_size=batch_size,
                    shuffle=True,
                    num_workers=w,
                    generator=generator,
                    drop_last=len(baseline_set) % batch_size == 1,  # as TensorBatches: no batch of one
                    pin_memory=device.type == "cuda",
                )
                start = time.perf_counter()
                compute, steps = train_epoch(base, loader, device)
                base.epochs.append(Epoch(time.perf_counter() - start, compute, steps))
            done = ", ".join(f"{v.short} {v.epochs[-1].total:.2f}s" for v in (ser, *baselines))
            print(f"  epoch {epoch + 1}: {done}", flush=True)
        start = time.perf_counter()
        ser_train_batches(cfg, dataset, args.fold, device)  # what a later run or sweep trial pays
        startup_hit = time.perf_counter() - start

    variants = [*baselines, ser]
    rows = summary_rows(variants)
    print()
    print(format_table(rows, list(rows[0])))
    print(
        f"ser epoch 1 includes {ser.epochs[0].setup:.2f}s building the cache for all {len(utterances)} files "
        f"({feature_seconds:.2f}s features, the rest decode + hashing + writes); a later start from the "
        f"warm cache took {startup_hit:.3f}s"
    )
    best_data = min(baselines, key=lambda v: median([e.data for e in v.epochs[1:]]))
    best_epoch = min(baselines, key=lambda v: median([e.total for e in v.epochs[1:]]))
    best_first = min(baselines, key=lambda v: v.epochs[0].total)
    ser_warm_data = median([e.data for e in ser.epochs[1:]])
    ser_warm_total = median([e.total for e in ser.epochs[1:]])
    for base in baselines:
        data_x = safe_ratio(median([e.data for e in base.epochs[1:]]), ser_warm_data)
        epoch_x = safe_ratio(median([e.total for e in base.epochs[1:]]), ser_warm_total)
        cold_x = safe_ratio(ser.epochs[0].total, base.epochs[0].total)
        print(
            f"vs {base.name}: data side {data_x:.1f}x smaller, warm epoch {epoch_x:.2f}x faster, "
            f"ser's cold epoch 1 = {cold_x:.2f}x its epoch 1"
        )
    ratios = {
        "data_side_speedup": safe_ratio(median([e.data for e in best_data.epochs[1:]]), ser_warm_data),
        "epoch_speedup": safe_ratio(median([e.total for e in best_epoch.epochs[1:]]), ser_warm_total),
        "cold_first_epoch_ratio": safe_ratio(ser.epochs[0].total, best_first.epochs[0].total),
    }
    print(
        "ratios against the fastest baseline row for each quantity; speedups: baseline / ser (higher is "
        "better); cold_first_epoch_ratio: ser's cold epoch 1 / baseline's epoch 1 (<= 1 means not slower)"
    )
    print(ratios_line(ratios))
    if args.json:
        import json

        Path(args.json).write_text(json.dumps({"rows": rows, "ratios": ratios}, indent=2))
    return ratios


if __name__ == "__main__":
    main()
