"""A pretrained encoder's hidden states of every layer, computed once per (files, audio settings, encoder)
and cached like the log-mels: content-keyed, atomic, checksummed, memory-mapped (ser/data/cache.py).

The key holds the encoder's identity (`repo@commit` for a hub snapshot, a content hash of a local folder's
settings and weights), so another encoder, revision or a retrained local copy never reads stale states.
Two granularities are stored: per-layer time means [N, L, D] when the head pools by the mean (the mean
over time commutes with the layer mix; 1/T of the bytes, so a fold fits on the device and a head trial
takes seconds), or frames [N, L, D, T] for stats/attention pooling and time masking. Means are derived
from cached frames when those exist. Values are stored as float16 unless model.ssl_cache_dtype=float32
(bench/ssl_encoders.py measures what it changes).

torch and transformers are imported only when states must be computed or scored.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

import numpy as np
from omegaconf import DictConfig

from ser.config import ConfigError
from ser.data.types import Utterance

STAGE = "embeddings"
VERSION = 1  # bump when the extraction changes what is stored
EXTRACT_BATCH = {"cpu": 8, "cuda": 32}
FLOAT16_MAX = 65504.0


def granularity(cfg: DictConfig) -> str:
    """'utterance' (per-layer time means) or 'frame': what the frozen head needs from the cache."""
    aug = cfg.data.augment
    over_time = float(aug.specaugment_p) > 0 or float(aug.time_stretch_p) > 0
    return "frame" if cfg.model.ssl_pooling != "mean" or over_time else "utterance"


def encoder_settings(cfg: DictConfig) -> dict[str, Any]:
    """What about the encoder shapes a prepared array, from the config alone (sweeps share data by it)."""
    model = cfg.model
    frozen = model.ssl_mode == "frozen"
    return {
        "encoder": model.encoder,
        "revision": model.encoder_revision,
        "mode": model.ssl_mode,
        "granularity": granularity(cfg) if frozen else None,
        "dtype": model.ssl_cache_dtype if frozen else None,
    }


def resolve(cfg: DictConfig):
    """The config's encoder (ser.data.encoders.source.EncoderSource), checked against the audio settings."""
    from ser.data.encoders.source import resolve_encoder

    source = resolve_encoder(cfg.model.encoder, cfg.model.encoder_revision, cfg.data.features.cache_dir)
    rate = int(cfg.data.audio.sample_rate)
    if source.sampling_rate != rate:
        raise ConfigError(
            f"invalid config key 'data.audio.sample_rate': {rate} Hz, but encoder {source.source} takes "
            f"{source.sampling_rate} Hz audio; set data.audio.sample_rate={source.sampling_rate}"
        )
    return source


def encoder_record(source: Any) -> dict[str, Any]:
    """What training passes to the network and checkpoints keep: the encoder's record and local folder."""
    return {**source.record(), "folder": str(source.folder)}


def extraction_device(cfg: DictConfig) -> str:
    import torch

    wants_gpu = str(cfg.trainer.accelerator) in ("auto", "gpu", "cuda")
    return "cuda" if wants_gpu and torch.cuda.is_available() else "cpu"


def to_storage(states: Any, dtype: str) -> np.ndarray:
    """float32 states -> the cache's dtype; values float16 cannot hold are an error, not infinities."""
    array = states.float().cpu().numpy()
    if not np.isfinite(array).all():
        raise ValueError("the encoder produced NaN or infinite hidden states")
    if dtype == "float16":
        peak = float(np.abs(array).max(initial=0.0))
        if peak > FLOAT16_MAX:
            raise ConfigError(
                f"invalid config key 'model.ssl_cache_dtype': hidden states reach {peak:g}, beyond float16's "
                "range; set model.ssl_cache_dtype=float32"
            )
        return array.astype(np.float16)
    return array


def extract(
    stack: Any, waves: np.ndarray, grain: str, dtype: str, device: str = "cpu", progress: bool = False
) -> np.ndarray:
    """States of every row of `waves` [N, samples], in batches on `device`: [N, L, D] or [N, L, D, T]."""
    import torch
    from tqdm.auto import tqdm

    from ser.data.encoders.stack import summarize

    stack = stack.to(device).eval()
    batch = EXTRACT_BATCH.get(device, 8)
    out: np.ndarray | None = None
    starts = range(0, len(waves), batch)
    with torch.inference_mode():
        for start in tqdm(starts, desc="encoder states", disable=not progress, leave=False, unit="batch"):
            chunk = torch.from_numpy(np.array(waves[start : start + batch], dtype=np.float32)).to(device)
            part = to_storage(summarize(stack(chunk), grain), dtype)
            if out is None:
                out = np.empty((len(waves), *part.shape[1:]), dtype=part.dtype)
            out[start : start + len(part)] = part
    if out is None:  # no usable file: an empty array of the right rank (the caller reports the corpus)
        return np.zeros((0, stack.n_states, stack.hidden_size), dtype=np.float16)
    return out


def time_means(frames: np.ndarray, dtype: str, rows: int = 256) -> np.ndarray:
    """[N, L, D, T] cached frames -> [N, L, D] means (float32 sums), a slice of rows at a time."""
    out = np.empty(frames.shape[:3], dtype=np.float16 if dtype == "float16" else np.float32)
    for start in range(0, len(frames), rows):
        out[start : start + rows] = np.asarray(frames[start : start + rows], dtype=np.float32).mean(axis=-1)
    return out


def load_embeddings(utterances: Sequence[Utterance], cfg: DictConfig, source: Any, progress: bool = True):
    """The cached states (a FeatureSet) of `source`, the config's resolved frozen encoder (`resolve`)."""
    from ser.data.cache import cached_array, load_waveforms, read_cached

    grain, dtype = granularity(cfg), str(cfg.model.ssl_cache_dtype)
    audio, cache_dir = cfg.data.audio, cfg.data.features.cache_dir

    def settings(of_grain: str) -> dict[str, Any]:
        return {"encoder": source.identity, "granularity": of_grain, "dtype": dtype, "version": VERSION}

    def compute(rows: list[Utterance]) -> tuple[np.ndarray, dict[str, Any]]:
        if grain == "utterance":  # cached frames already hold the means
            frames = read_cached(STAGE, settings("frame"), rows, audio, cache_dir)
            if frames is not None:
                array, meta = frames
                return time_means(array, dtype), {"ids": meta["ids"], "skipped": meta["skipped"]}
        from ser.data.encoders.stack import build_stack

        waveset = load_waveforms(rows, audio, cache_dir=cache_dir, progress=progress)
        stack = build_stack(encoder_record(source), waveset.waves.shape[1], pretrained=True)
        array = extract(stack, waveset.waves, grain, dtype, extraction_device(cfg), progress)
        meta = {"ids": waveset.ids, "skipped": [asdict(s) for s in waveset.skipped], "source": source.source}
        return array, meta

    return cached_array(STAGE, settings(grain), utterances, audio, compute, cache_dir)


def frozen_featurizer(cfg: DictConfig, trained: dict[str, Any] | None, n_samples: int):
    """The encoder a frozen-mode head was trained on, found where its config says (model.encoder) and
    checked to be the same weights, as a module from waveforms to the head's input; ConfigError if not."""
    from ser.data.encoders.stack import FrozenStates, build_stack

    source = resolve(cfg)
    if trained is not None and trained.get("identity") != source.identity:
        raise ConfigError(
            f"invalid config key 'model.encoder': {cfg.model.encoder} now holds {source.identity}, but the "
            f"head was trained on the states of {trained.get('identity')}; put that encoder back there"
        )
    stack = build_stack(encoder_record(source), n_samples, pretrained=True)
    return FrozenStates(stack, granularity(cfg), str(cfg.model.ssl_cache_dtype)).eval()
