"""Several views of each clip in one row: the spectrogram a CNN reads (or the vector svm / feature_mlp
read), a second view (eGeMAPS, the 193
librosa statistics, a frozen encoder's states) for fusion, and the speaker's index for the adversary.

Why one packed row: the batches are slices of one array on the training device (ser.data.datamodule), and
every path that serves, trains, scores and checkpoints rows (folds, sweeps, `ser evaluate`) works on one
array; a `Layout` says where each part lies in the flat row, and the multi-view pipeline
(ser.models.multiview) splits it again on the device. The speaker column is an integer index into the
corpus's sorted speakers; only the training split's are ever used as labels (by the adversary).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

SPECTROGRAM, VECTOR, VIEW, SPEAKER = "spectrogram", "vector", "view", "speaker"


@dataclass(frozen=True)
class Layout:
    """Named parts of a flat row, in order, each with its shape (no batch axis)."""

    parts: tuple[tuple[str, tuple[int, ...]], ...]
    n_speakers: int = 0  # > 0: a speaker column (the adversary's labels)

    def size(self, name: str) -> int:
        return int(np.prod(self.shape(name)))

    def shape(self, name: str) -> tuple[int, ...]:
        for part, shape in self.parts:
            if part == name:
                return shape
        raise KeyError(f"the row layout has no part {name!r} (parts: {[p for p, _ in self.parts]})")

    def has(self, name: str) -> bool:
        return any(part == name for part, _ in self.parts)

    @property
    def width(self) -> int:
        return sum(int(np.prod(shape)) for _, shape in self.parts)

    def split(self, x: Any) -> dict[str, Any]:
        """[B, width] rows (torch or numpy) -> {name: [B, *shape]}."""
        out, start = {}, 0
        for name, shape in self.parts:
            size = int(np.prod(shape))
            out[name] = x[:, start : start + size].reshape(x.shape[0], *shape)
            start += size
        return out

    def join(self, parts: Mapping[str, Any]) -> Any:
        """{name: [B, *shape]} torch tensors -> [B, width] rows, in this layout's order."""
        import torch

        return torch.cat([parts[name].reshape(parts[name].shape[0], -1) for name, _ in self.parts], dim=1)

    def replace(self, name: str, shape: tuple[int, ...]) -> Layout:
        """This layout with part `name` of another shape (the spectrogram after delta channels)."""
        parts = tuple((n, tuple(shape) if n == name else s) for n, s in self.parts)
        return Layout(parts, self.n_speakers)

    def to_record(self) -> dict[str, Any]:
        """Plain types, for checkpoints."""
        return {"parts": [[name, list(shape)] for name, shape in self.parts], "n_speakers": self.n_speakers}

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Layout:
        parts = tuple((str(name), tuple(int(d) for d in shape)) for name, shape in record["parts"])
        return cls(parts, int(record.get("n_speakers", 0)))


def needs_views(cfg: Any) -> bool:
    """Fusion with a second view, or the speaker adversary: rows are packed (this module)."""
    return str(cfg.model.fusion) != "none" or float(cfg.model.adversary_weight) > 0


def encoder_view_config(cfg: Any) -> tuple[Any, Any]:
    """(the config the encoder view is extracted with, the resolved encoder): per-layer utterance means
    whatever the CNN's augmentation, of the same clip at the encoder's own rate (EfficientAT: 32 kHz).
    Training caches the view with it and `ser predict` recomputes it with it, so both see the same."""
    from ser.data.encoders.source import resolve_encoder

    view_cfg = cfg.copy()  # granularity() reads pooling and augmentation: utterance means
    view_cfg.model.ssl_pooling = "mean"
    view_cfg.data.augment.specaugment_p = 0.0
    view_cfg.data.augment.time_stretch_p = 0.0
    source = resolve_encoder(cfg.model.encoder, cfg.model.encoder_revision, cfg.data.features.cache_dir)
    view_cfg.data.audio.sample_rate = int(source.sampling_rate)
    return view_cfg, source


def view_array(cfg: Any, rows: Sequence[Any], progress: bool) -> tuple[np.ndarray, float]:
    """The second view of `rows` (utterances, in order): [N, D] vectors or [N, L, D] encoder states
    (per-layer time means), float32, from the feature cache; and the seconds spent computing it."""
    from ser.data.cache import load_features

    view, cache_dir = str(cfg.model.fusion_view), cfg.data.features.cache_dir
    if view == "encoder":
        from ser.data.embeddings import load_embeddings

        view_cfg, source = encoder_view_config(cfg)
        loaded = load_embeddings(rows, view_cfg, source, progress=progress)
    else:
        loaded = load_features(rows, cfg.data.audio, cfg.data.features, view, cache_dir, progress)
    if list(loaded.ids) != [u.id for u in rows]:
        missing = sorted({u.id for u in rows} - set(loaded.ids))[:3]
        raise ValueError(f"the second view ({view}) lacks utterances the spectrogram has: {missing}")
    return np.asarray(loaded.x, dtype=np.float32), loaded.compute_seconds


def vector_layer(cfg: Any, n_states: int) -> int:
    """The encoder state a vector family reads (model.layer: last or an index; one state needs none)."""
    from ser.config import ConfigError

    if n_states == 1:
        return 0
    layer = str(cfg.model.layer)
    if layer == "last":
        return n_states - 1
    if not layer.isdigit() or int(layer) >= n_states:
        raise ConfigError(
            f"invalid config key 'model.layer': {layer!r}; model '{cfg.model.name}' learns no layer weights, "
            f"so the encoder view needs one of its {n_states} states: last or an index 0..{n_states - 1}"
        )
    return int(layer)


def pack(
    cfg: Any, spectrogram: np.ndarray, rows: Sequence[Any], speakers: Sequence[str], progress: bool = True
) -> tuple[np.ndarray, Layout, float]:
    """(packed rows [N, width] float32, their layout, seconds computing the view) for `cfg`'s views: the
    spectrogram, or the vector of svm / feature_mlp (already standardised as data.features.normalize
    says; a vector family then reads the packed row as one longer vector), the view (standardised per speaker
    too when normalize=speaker; else the pipeline standardises it with training-split statistics) and the
    speaker index when the adversary is on."""
    from ser.data.normalize import standardize_groups

    main = np.asarray(spectrogram, dtype=np.float32)
    parts: list[tuple[str, np.ndarray]] = [(SPECTROGRAM if main.ndim == 4 else VECTOR, main)]
    seconds = 0.0
    if str(cfg.model.fusion) != "none":
        view, seconds = view_array(cfg, rows, progress)
        if main.ndim == 2 and view.ndim == 3:  # svm / feature_mlp learn no layer weights: one layer's states
            view = view[:, vector_layer(cfg, view.shape[1])]
        if cfg.data.features.normalize == "speaker":
            view = standardize_groups(view, speakers).numpy()
        parts.append((VIEW, view))
    n_speakers = 0
    if float(cfg.model.adversary_weight) > 0:
        names = sorted(set(speakers))
        index = {name: i for i, name in enumerate(names)}
        parts.append((SPEAKER, np.asarray([[index[s]] for s in speakers], dtype=np.float32)))
        n_speakers = len(names)
    layout = Layout(tuple((name, tuple(a.shape[1:])) for name, a in parts), n_speakers)
    packed = np.concatenate([a.reshape(len(a), -1) for _, a in parts], axis=1)
    return np.ascontiguousarray(packed, dtype=np.float32), layout, seconds
