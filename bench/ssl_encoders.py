"""Pretrained encoders (the ssl family): what extracting their hidden states costs, what the cache saves,
what float16 storage changes, and what a frozen-head trial costs next to a CNN trial.

Encoders are random-initialised wav2vec2s saved with save_pretrained into a temp dir (no weights are
downloaded): a tiny one (hidden 32, 2 layers: the tests' encoder) and, for time only, the base-size
architecture (12 layers, hidden 768, 95M parameters: wav2vec2-base's shape). Every variant goes through the
library's own code (prepare_data -> ser/data/embeddings.py, train_fold), single-threaded.

  extract cold     prepare_data into an empty states cache (waveforms already decoded and cached): the
                   encoder's forward over every clip, per-layer time means, float16, written to the cache
  extract cached   prepare_data again: the memory-mapped states read back (every value touched)
  fp16 vs fp32     the tiny encoder's states stored as float16 and as float32, a frozen head trained on each
                   (same seed): largest relative difference of the states, test UA of both heads
  trial            train_fold on prepared data (what a sweep trial runs once Ray hands it the data), a frozen
                   head (weighted layer mix, mean pooling, 2-layer MLP) vs the default CNN on log-mels, for
                   --epochs epochs; per epoch (training + validation) and the rest of the trial (overhead)

    python bench/ssl_encoders.py                  # synthetic corpus; base-size extraction on 24 clips
    python bench/ssl_encoders.py --data /work/shared/data/ravdess-dev-16k --corpus ravdess --base-clips 48

(Not bench/ssl.py: a script of that name would shadow Python's own `ssl` module for `python bench/ssl.py`.)
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from _common import (
    add_data_args,
    bench_config,
    format_table,
    machine_line,
    ratios_line,
    safe_ratio,
    select_dataset,
)

TINY = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64}
TINY_CONV = {"conv_dim": (16,) * 7, "num_conv_pos_embeddings": 16, "num_conv_pos_embedding_groups": 2}
HEAD = ["model.classifier_layers=2", "model.hidden=64", "data.features.normalize=speaker", "optim.lr=0.003"]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    add_data_args(parser)
    parser.add_argument("--base-clips", type=int, default=24, help="clips the base-size encoder embeds")
    parser.add_argument("--no-base", action="store_true", help="skip the base-size encoder")
    parser.add_argument("--epochs", type=int, default=6, help="epochs of the longer trial")
    parser.add_argument("--repeats", type=int, default=2, help="repeats of each timing (median)")
    return parser.parse_args(argv)


def save_encoder(folder: Path, size: str) -> Path:
    """A random wav2vec2 of `size` (tiny | base) saved as the hub holds one."""
    import torch
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2Model
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    torch.manual_seed(0)
    config = Wav2Vec2Config(**TINY, **TINY_CONV) if size == "tiny" else Wav2Vec2Config()
    Wav2Vec2Model(config).save_pretrained(folder)
    Wav2Vec2FeatureExtractor().save_pretrained(folder)
    return folder


def touch_all(array: np.ndarray) -> float:
    """Read every value (a memory-mapped cache hit is otherwise free)."""
    return float(np.asarray(array, dtype=np.float32).sum())


def time_extraction(cfg, dataset, cache_root: Path, repeats: int) -> dict[str, float]:
    """Median seconds of prepare_data cold (fresh states cache) and cached, waveforms pre-decoded."""
    from ser.data.cache import load_waveforms
    from ser.data.prepared import prepare_data

    load_waveforms(dataset.utterances, cfg.data.audio, cache_dir=str(cache_root / "waves"), progress=False)
    cold, cached = [], []
    for rep in range(repeats):
        run = cfg.copy()
        run.data.features.normalize = "none"  # the states as cached (speaker statistics would add a copy)
        run.data.features.cache_dir = str(cache_root / f"states-{rep}")
        shutil.copytree(cache_root / "waves", cache_root / f"states-{rep}", dirs_exist_ok=True)
        start = time.perf_counter()
        data = prepare_data(run, progress=False, dataset=dataset)
        touch_all(data.x)
        cold.append(time.perf_counter() - start)
        assert not data.from_cache
        start = time.perf_counter()
        again = prepare_data(run, progress=False, dataset=dataset)
        touch_all(again.x)
        cached.append(time.perf_counter() - start)
        assert again.from_cache
    return {"cold": float(np.median(cold)), "cached": float(np.median(cached)), "bytes": float(data.x.nbytes)}


def time_trials(cfg, prepared, out: Path, epochs: int, repeats: int) -> dict[str, float]:
    """Median wall of train_fold for `epochs` epochs, its epochs' own time (training and validation, from
    Lightning's epoch hooks) and the rest: the trial's overhead (model and Trainer set-up, test, files)."""
    from lightning.pytorch.callbacks import Callback

    from ser.training.fold import train_fold

    class EpochTimer(Callback):
        def __init__(self) -> None:
            self.seconds: list[float] = []

        def on_train_epoch_start(self, trainer, module) -> None:
            self.start = time.perf_counter()

        def on_train_epoch_end(self, trainer, module) -> None:  # after the epoch's validation
            self.seconds.append(time.perf_counter() - self.start)

    walls, epoch_s, result = [], [], None
    for rep in range(repeats):
        run = cfg.copy()
        run.trainer.max_epochs = epochs
        timer = EpochTimer()
        start = time.perf_counter()
        result = train_fold(run, prepared, 0, out / str(rep), callbacks=[timer], write_plots=False)
        walls.append(time.perf_counter() - start)
        epoch_s.append(float(np.mean(timer.seconds)))
    wall, epoch = float(np.median(walls)), float(np.median(epoch_s))
    return {
        "wall": wall,
        "epoch": epoch,
        "overhead": wall - epochs * epoch,
        "uar": result.test["uar"],
        "confusion": result.test["confusion"],
    }


def with_cache(cfg, cache_dir: Path, **model):
    """`cfg` reading/writing its states under `cache_dir`, with model keys changed."""
    run = cfg.copy()
    run.data.features.cache_dir = str(cache_dir)
    for key, value in model.items():
        run.model[key] = value
    return run


def main(argv: Sequence[str] | None = None) -> dict[str, float]:
    import torch

    from ser.data.prepared import prepare_data

    torch.set_num_threads(1)
    args = parse_args(list(sys.argv[1:] if argv is None else argv))
    ratios: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="ser-bench-ssl-") as tmp:
        root = Path(tmp)
        common = [
            "trainer.progress_bar=false",
            "trainer.accelerator=cpu",
            f"trainer.output_dir={root / 'runs'}",
        ]
        tiny = save_encoder(root / "tiny", "tiny")
        cfg = bench_config(args, [*common, "model.name=ssl", f"model.encoder={tiny}", *HEAD])
        dataset = select_dataset(cfg, args.limit)
        minutes = len(dataset.utterances) * float(cfg.data.audio.duration) / 60.0
        print(machine_line())
        print(
            f"data: {args.data or 'synthetic'} ({len(dataset.utterances)} clips of "
            f"{cfg.data.audio.duration:g} s = {minutes:.1f} min of audio)"
        )

        # extraction: the tiny encoder on every clip, the base-size one on a subset
        tiny_t = time_extraction(cfg, dataset, root / "tiny-cache", args.repeats)
        rows = [extraction_row("tiny wav2vec2 (30k params)", tiny_t, minutes)]
        ratios["tiny_cached_vs_cold"] = safe_ratio(tiny_t["cold"], tiny_t["cached"])
        if not args.no_base:
            base = save_encoder(root / "base", "base")
            base_cfg = bench_config(args, [*common, "model.name=ssl", f"model.encoder={base}", *HEAD])
            subset = select_dataset(base_cfg, min(args.base_clips, len(dataset.utterances)))
            base_minutes = len(subset.utterances) * float(cfg.data.audio.duration) / 60.0
            base_t = time_extraction(base_cfg, subset, root / "base-cache", 1)
            rows.append(
                extraction_row(
                    f"base-size wav2vec2 (95M, random), {len(subset.utterances)} clips", base_t, base_minutes
                )
            )
            ratios["base_cached_vs_cold"] = safe_ratio(base_t["cold"], base_t["cached"])
            ratios["base_vs_tiny_per_audio_minute"] = safe_ratio(
                base_t["cold"] / base_minutes, tiny_t["cold"] / minutes
            )
        print()
        print(format_table(rows, list(rows[0])))

        # float16 vs float32 states, and a head trained on each (no standardisation in between)
        states = root / "tiny-cache" / "states-0"
        stored, heads = {}, {}
        for dtype in ("float16", "float32"):
            run = with_cache(cfg, states, ssl_cache_dtype=dtype)
            run.data.features.normalize = "none"
            stored[dtype] = prepare_data(run, progress=False, dataset=dataset)
            heads[dtype] = time_trials(run, stored[dtype], root / f"fp-{dtype}", args.epochs, 1)
        half = np.asarray(stored["float16"].x, dtype=np.float32)
        full = np.asarray(stored["float32"].x)
        rel = float(np.abs(half - full).max() / max(np.abs(full).max(), 1e-12))
        same = heads["float16"]["confusion"] == heads["float32"]["confusion"]
        print(
            f"\nfloat16 states {stored['float16'].x.nbytes / 2**20:.2f} MiB vs float32 "
            f"{stored['float32'].x.nbytes / 2**20:.2f} MiB; largest difference {rel:.1e} of the largest "
            "value; "
            f"test UA of a head trained on each (fold 0, {args.epochs} epochs, same seed): "
            f"{heads['float16']['uar']:.3f} vs {heads['float32']['uar']:.3f}, confusion matrices "
            f"{'identical' if same else 'different'}"
        )
        ratios["fp16_vs_fp32_bytes"] = safe_ratio(stored["float16"].x.nbytes, stored["float32"].x.nbytes)
        ratios["fp16_vs_fp32_test_uar"] = safe_ratio(heads["float16"]["uar"], heads["float32"]["uar"])

        # a frozen-head trial vs a CNN trial, each on data prepared before the trial (as a sweep does)
        head_cfg = with_cache(cfg, states)
        cnn_cfg = bench_config(args, [*common, f"data.features.cache_dir={root / 'cnn'}"])
        trials = {
            "frozen head (ssl)": time_trials(
                head_cfg, prepare_data(head_cfg, False, dataset), root / "head", args.epochs, args.repeats
            ),
            "CNN (emotion_detector)": time_trials(
                cnn_cfg, prepare_data(cnn_cfg, False, dataset), root / "cnn-runs", args.epochs, args.repeats
            ),
        }
        trial_rows = [
            {
                "trial": name,
                f"{args.epochs} epochs s": t["wall"],
                "per epoch s": t["epoch"],
                "overhead s": t["overhead"],
                "test UA": t["uar"],
            }
            for name, t in trials.items()
        ]
        print()
        print(format_table(trial_rows, list(trial_rows[0])))
        head, cnn = trials["frozen head (ssl)"], trials["CNN (emotion_detector)"]
        ratios["head_trial_vs_cnn_trial"] = safe_ratio(head["wall"], cnn["wall"])
        ratios["head_epoch_vs_cnn_epoch"] = safe_ratio(head["epoch"], cnn["epoch"])
        ratios["head_overhead_vs_cnn_overhead"] = safe_ratio(head["overhead"], cnn["overhead"])
    print(
        "\nextraction s/min audio: seconds per minute of audio, waveforms already decoded; cached: the "
        "states read back memory-mapped. Trials: train_fold on prepared data, fold 0; per epoch: training "
        "and validation; overhead: the rest of the trial (model and Trainer set-up, test, checkpoint). Ray's "
        "per-trial start-up comes on top and is the same for every family (bench/trials.py)."
    )
    print(ratios_line(ratios))
    return ratios


def extraction_row(name: str, t: dict[str, float], minutes: float) -> dict:
    return {
        "encoder": name,
        "cold s": t["cold"],
        "cold s/min audio": t["cold"] / minutes,
        "cached s": t["cached"],
        "cached s/min audio": t["cached"] / minutes,
        "states MiB": t["bytes"] / 2**20,
    }


if __name__ == "__main__":
    main()
