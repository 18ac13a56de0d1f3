"""Decoded waveforms and features, computed once per (files, settings) and shared through an on-disk cache.

Layout: `<root>/<stage>/<key>/{<array>.npy, index.json}` with stage `waves` or `features`. The key hashes
the settings and every file's (path, id, size, mtime_ns), so editing/touching a file or changing a setting
gives a new entry and a stale one is never read. Entries appear atomically (written in a temp dir, then
`os.replace`), so concurrent sweep trials never see half a file; they are read back memory-mapped so
many processes share the same pages.

Rows are stored in a canonical order (sorted by path, then id), which makes the key independent of the
order callers list utterances in; results are returned in the caller's order (a copy only when that
differs from the canonical one).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

from ser.config.errors import writing_to
from ser.data.features import KINDS, feature_shape, logmel_kwargs
from ser.data.paths import cache_root
from ser.data.types import Skipped, Utterance

CACHE_VERSION = 3  # bump when the stored computation (or its checksum: 3 covers the ids) changes
TORCH_BATCH = 16  # measured: 2.5x less CPU than 64 on one thread, and ~110 MB fewer intermediates


@dataclass
class WaveSet:
    """Fixed-length waveforms of the usable utterances, plus every file that could not be used."""

    waves: np.ndarray  # [N, n_samples] float32 (memory-mapped when read from the cache)
    ids: list[str]  # utterance ids of the rows, in the caller's order
    skipped: list[Skipped] = field(default_factory=list)
    key: str = ""
    from_cache: bool = False


@dataclass
class FeatureSet:
    """Features of the usable utterances: [N, 1, F, T] maps or [N, 193] vectors."""

    x: np.ndarray
    ids: list[str]
    skipped: list[Skipped] = field(default_factory=list)
    key: str = ""
    from_cache: bool = False
    compute_seconds: float = 0.0  # feature computation in this call (0 when read from the cache)


def _canonical(utterances: Sequence[Utterance]) -> list[Utterance]:
    return sorted(utterances, key=lambda u: (str(u.path), u.id))


def _fingerprint(u: Utterance) -> list[Any]:
    try:
        st = os.stat(u.path)
        return [str(u.path), u.id, st.st_size, st.st_mtime_ns]
    except OSError:  # missing now: still keyed, and reported as skipped when loaded
        return [str(u.path), u.id, -1, -1]


def cache_key(settings: dict[str, Any], utterances: Sequence[Utterance]) -> str:
    """sha256 over the settings' JSON and each file's (path, id, size, mtime_ns), in canonical order."""
    h = hashlib.sha256()
    h.update(json.dumps({"version": CACHE_VERSION, **settings}, sort_keys=True).encode())
    for u in _canonical(utterances):
        h.update(json.dumps(_fingerprint(u)).encode())
    return h.hexdigest()


def _audio_settings(audio_cfg: Any) -> dict[str, Any]:
    return {
        "sample_rate": int(audio_cfg.sample_rate),
        "duration": float(audio_cfg.duration),
        "crop": str(audio_cfg.crop),
        "normalize": str(audio_cfg.normalize),
    }


def n_samples_of(audio_cfg: Any) -> int:
    return int(round(float(audio_cfg.sample_rate) * float(audio_cfg.duration)))


# ------------------------------------------------------------------------------------- storage
def checksum(array: np.ndarray, ids: Sequence[str] | None = None) -> str:
    """blake2b of the row ids (when given) and the array's bytes, in 16 MB slices (a memory-mapped array
    is read, never copied whole). The ids are covered so that reordering them in index.json, which would
    give every row another utterance's label, is caught like a change to the array."""
    h = hashlib.blake2b(digest_size=16)
    if ids is not None:
        h.update(json.dumps([str(i) for i in ids]).encode())
    flat = array.reshape(-1) if array.flags.c_contiguous else np.ascontiguousarray(array).reshape(-1)
    step = max(1, (16 << 20) // max(flat.itemsize, 1))
    for start in range(0, flat.size, step):
        h.update(memoryview(np.ascontiguousarray(flat[start : start + step])).cast("B"))
    return h.hexdigest()


# (array file, size, mtime, index size, mtime) already checked in this process
_VERIFIED: dict[tuple[str, int, int, int, int], bool] = {}


def _read_entry(folder: Path, array_name: str) -> Optional[tuple[np.ndarray, dict[str, Any]]]:
    """The entry's array (memory-mapped) and index, or None after discarding a damaged entry: unreadable,
    truncated, rows not matching its ids, or bytes not matching the checksum written with it."""
    index = folder / "index.json"
    if not index.is_file():
        return None
    path = folder / f"{array_name}.npy"
    try:
        meta = json.loads(index.read_text())
        array = np.load(path, mmap_mode="r")
    except (OSError, ValueError, EOFError) as exc:
        return _discard(folder, f"unreadable ({type(exc).__name__}: {exc})")
    if array.shape[0] != len(meta.get("ids", [])):
        return _discard(folder, f"{array.shape[0]} rows but {len(meta.get('ids', []))} ids")
    stat, index_stat = path.stat(), index.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns, index_stat.st_size, index_stat.st_mtime_ns)
    if key not in _VERIFIED:
        if meta.get("checksum") != checksum(array, meta.get("ids", [])):
            return _discard(folder, "contents differ from the checksum written with them (changed on disk)")
        _VERIFIED[key] = True
    return array, meta


def _discard(folder: Path, why: str) -> None:
    """A damaged entry (entries are written atomically, so only disk damage or a hand edit) is reported,
    removed and recomputed."""
    print(f"ser: recomputing cache entry {folder}: {why}", file=sys.stderr)
    shutil.rmtree(folder, ignore_errors=True)
    return None


def _write_entry(folder: Path, array_name: str, array: np.ndarray, meta: dict[str, Any]) -> None:
    """Write into a sibling temp dir, then rename it into place in one step; a full disk is one line
    naming the cache folder (the temp dir is removed, so no half entry is left)."""
    with writing_to(folder.parent.parent, "the feature cache: SER_CACHE or data.features.cache_dir"):
        _write_entry_into(folder, array_name, array, meta)


def _write_entry_into(folder: Path, array_name: str, array: np.ndarray, meta: dict[str, Any]) -> None:
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{folder.name[:16]}-", dir=folder.parent))
    try:
        array = np.ascontiguousarray(array)
        np.save(tmp / f"{array_name}.npy", array)
        sums = checksum(array, meta.get("ids", []))
        (tmp / "index.json").write_text(json.dumps({**meta, "checksum": sums}, indent=1))
        try:
            os.replace(tmp, folder)
        except OSError:
            if (folder / "index.json").is_file():
                return  # another process wrote the same entry first: keep theirs
            shutil.rmtree(folder, ignore_errors=True)  # a broken leftover without an index
            os.replace(tmp, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _entry_to_caller_order(
    array: np.ndarray, meta: dict[str, Any], utterances: Sequence[Utterance]
) -> tuple[np.ndarray, list[str], list[Skipped]]:
    stored_ids: list[str] = list(meta["ids"])
    skipped = [Skipped(path=s["path"], reason=s["reason"]) for s in meta.get("skipped", [])]
    row_of = {uid: i for i, uid in enumerate(stored_ids)}
    wanted = [u.id for u in utterances if u.id in row_of]
    order = [row_of[uid] for uid in wanted]
    if order == list(range(len(stored_ids))):
        return array, wanted, skipped  # the common case: no copy, pages stay shared
    return np.asarray(array[order]), wanted, skipped


def _progress(items: Sequence[Any], desc: str, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(items, desc=desc, disable=not enabled, file=sys.stderr, leave=False, unit="file")


# ------------------------------------------------------------------------------------ waveforms
def _decode_all(
    utterances: Sequence[Utterance], audio_cfg: Any, progress: bool
) -> tuple[np.ndarray, list[str], list[Skipped]]:
    from ser.data.audio import AudioError, fix_length, load_audio

    n = n_samples_of(audio_cfg)
    waves = np.empty((len(utterances), n), dtype=np.float32)  # filled in place: no second copy to stack
    ids: list[str] = []
    skipped: list[Skipped] = []
    for u in _progress(utterances, "decoding audio", progress):
        try:
            wave = load_audio(u.path, sample_rate=int(audio_cfg.sample_rate), normalize=audio_cfg.normalize)
        except AudioError as exc:
            skipped.append(Skipped(path=str(u.path), reason=exc.reason))
            continue
        waves[len(ids)] = fix_length(wave, n, crop=str(audio_cfg.crop))
        ids.append(u.id)
    return waves[: len(ids)], ids, skipped


def load_waveforms(
    utterances: Sequence[Utterance], audio_cfg: Any, cache_dir: Optional[str] = None, progress: bool = True
) -> WaveSet:
    """Decoded, resampled, normalised, fixed-length waveforms [N, n_samples], cached on disk."""
    _check_unique_ids(utterances)
    settings = {"stage": "waves", "audio": _audio_settings(audio_cfg)}
    key = cache_key(settings, utterances)
    folder = cache_root(cache_dir) / "waves" / key
    entry = _read_entry(folder, "waves")
    from_cache = entry is not None
    if entry is None:
        waves, ids, skipped = _decode_all(_canonical(utterances), audio_cfg, progress)
        meta = {"ids": ids, "skipped": [asdict(s) for s in skipped], "settings": settings}
        _write_entry(folder, "waves", waves, meta)
        entry = _read_entry(folder, "waves") or (waves, meta)
    waves, ids, skipped = _entry_to_caller_order(*entry, utterances)
    return WaveSet(waves=waves, ids=ids, skipped=skipped, key=key, from_cache=from_cache)


def _check_unique_ids(utterances: Sequence[Utterance]) -> None:
    seen: set[str] = set()
    for u in utterances:
        if u.id in seen:
            raise ValueError(f"utterance id '{u.id}' occurs twice (e.g. {u.path}); ids must be unique")
        seen.add(u.id)


# ------------------------------------------------------------------------------------- features
def _feature_settings(audio_cfg: Any, feat_cfg: Any, kind: str, backend: str) -> dict[str, Any]:
    """Only what changes the numbers: not normalisation (applied later) nor augmentation."""
    settings: dict[str, Any] = {"stage": "features", "kind": kind, "audio": _audio_settings(audio_cfg)}
    if kind == "handcrafted":
        return settings  # librosa defaults; the spectrogram settings do not apply
    spec = logmel_kwargs(feat_cfg, int(audio_cfg.sample_rate))
    spec.pop("sample_rate")
    if kind == "mfcc":
        spec["n_mfcc"] = int(feat_cfg.n_mfcc)
    settings.update(features=spec, backend=backend)
    return settings


def _torch_features(waves: np.ndarray, feat_cfg: Any, sample_rate: int, kind: str) -> np.ndarray:
    import torch

    from ser.data.features import make_frontend

    frontend = make_frontend(feat_cfg, sample_rate, kind).eval()
    out = np.empty((len(waves), *feature_shape(feat_cfg, kind, waves.shape[1])), dtype=np.float32)
    with torch.inference_mode():
        for start in range(0, len(waves), TORCH_BATCH):
            batch = torch.from_numpy(
                np.array(waves[start : start + TORCH_BATCH], dtype=np.float32)
            )  # writable
            out[start : start + len(batch)] = frontend(batch).numpy()
    return out


def _per_item(
    waves: np.ndarray,
    fn: Callable[[np.ndarray], np.ndarray],
    shape: tuple[int, ...],
    desc: str,
    progress: bool,
) -> np.ndarray:
    out = np.empty((len(waves), *shape), dtype=np.float32)
    for i in _progress(range(len(waves)), desc, progress):
        out[i] = fn(np.asarray(waves[i]))
    return out


def load_features(
    utterances: Sequence[Utterance],
    audio_cfg: Any,
    feat_cfg: Any,
    kind: str,
    cache_dir: Optional[str] = None,
    progress: bool = True,
    backend: str = "torch",
) -> FeatureSet:
    """Features of `kind` (logmel | mfcc | handcrafted) from the cached waveforms, cached on disk.

    logmel/mfcc: the torch front end in batches (`backend="torch"`) or librosa per item ("librosa", the
    reference kept for benchmarks); handcrafted: librosa per item. Normalisation happens later.
    """
    if kind not in KINDS:
        raise ValueError(
            f"data.features.kind must be one of {KINDS} here (resolve 'auto' first), got '{kind}'"
        )
    if backend not in ("torch", "librosa"):
        raise ValueError(f"backend must be 'torch' or 'librosa', got '{backend}'")
    _check_unique_ids(utterances)
    settings = _feature_settings(audio_cfg, feat_cfg, kind, backend)
    key = cache_key(settings, utterances)
    folder = cache_root(cache_dir) / "features" / key
    entry = _read_entry(folder, "x")
    from_cache = entry is not None
    seconds = 0.0
    if entry is None:
        waveset = load_waveforms(_canonical(utterances), audio_cfg, cache_dir=cache_dir, progress=progress)
        sr, n = int(audio_cfg.sample_rate), waveset.waves.shape[1]
        start = time.perf_counter()
        if kind == "handcrafted":
            from ser.data.features import handcrafted_features

            x = _per_item(
                waveset.waves, lambda w: handcrafted_features(w, sr), (193,), "handcrafted features", progress
            )
        elif backend == "librosa":
            from ser.data.features import librosa_features

            fn = lambda w: librosa_features(w, feat_cfg, sr, kind)  # noqa: E731
            x = _per_item(waveset.waves, fn, feature_shape(feat_cfg, kind, n), f"{kind} (librosa)", progress)
        else:
            x = _torch_features(waveset.waves, feat_cfg, sr, kind)
        seconds = time.perf_counter() - start
        meta = {
            "ids": waveset.ids,
            "skipped": [asdict(s) for s in waveset.skipped],
            "settings": settings,
            "waves_key": waveset.key,
            "compute_seconds": seconds,
        }
        _write_entry(folder, "x", x, meta)
        entry = _read_entry(folder, "x") or (x, meta)
    x, ids, skipped = _entry_to_caller_order(*entry, utterances)
    return FeatureSet(x=x, ids=ids, skipped=skipped, key=key, from_cache=from_cache, compute_seconds=seconds)


# ----------------------------------------------------------------------------- other cached stages
def read_cached(
    stage: str,
    settings: dict[str, Any],
    utterances: Sequence[Utterance],
    audio_cfg: Any,
    cache_dir: Optional[str] = None,
) -> Optional[tuple[np.ndarray, dict[str, Any]]]:
    """The `stage` entry for these settings and files if cached (rows in canonical order), else None."""
    _check_unique_ids(utterances)
    full = {"stage": stage, "audio": _audio_settings(audio_cfg), **settings}
    return _read_entry(cache_root(cache_dir) / stage / cache_key(full, utterances), "x")


def cached_array(
    stage: str,
    settings: dict[str, Any],
    utterances: Sequence[Utterance],
    audio_cfg: Any,
    compute: Callable[[list[Utterance]], tuple[np.ndarray, dict[str, Any]]],
    cache_dir: Optional[str] = None,
) -> FeatureSet:
    """Rows of a further stage (e.g. a pretrained encoder's hidden states) with the same guarantees as the
    features: keyed by `settings`, the audio settings and every file, written atomically with a checksum,
    read back memory-mapped. `compute(utterances in canonical order)` returns the array and a meta dict
    holding at least its row `ids` and the `skipped` files (as dicts); it runs only on a miss."""
    _check_unique_ids(utterances)
    full = {"stage": stage, "audio": _audio_settings(audio_cfg), **settings}
    key = cache_key(full, utterances)
    folder = cache_root(cache_dir) / stage / key
    entry = _read_entry(folder, "x")
    from_cache = entry is not None
    seconds = 0.0
    if entry is None:
        start = time.perf_counter()
        array, meta = compute(_canonical(utterances))
        seconds = time.perf_counter() - start
        meta = {**meta, "settings": full, "compute_seconds": seconds}
        _write_entry(folder, "x", array, meta)
        entry = _read_entry(folder, "x") or (array, meta)
    x, ids, skipped = _entry_to_caller_order(*entry, utterances)
    return FeatureSet(x=x, ids=ids, skipped=skipped, key=key, from_cache=from_cache, compute_seconds=seconds)
