"""Fusion and speaker-adversary checkpoints at prediction time: the packed row their network reads, built
from one window of audio, and the speaker statistics that standardise it part by part.

Training packs each clip's spectrogram (or vector), its second view (eGeMAPS, the 193 statistics, a frozen
encoder's per-layer means) and a speaker index into one row (ser.data.views). `ser predict`, `ser live` and
`ser serve` build the same row from a window: the main part as a single-view model would, the view as
training cached it (an encoder hears the window resampled to its own rate, as training decoded the clip at
that rate), and a zero speaker column, which only the adversary reads, and only while training.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from ser.data.normalize import SpeakerStats
from ser.data.views import SPEAKER, VIEW, Layout
from ser.inference.checkpoint import CheckpointError


class PackedStats:
    """One speaker's statistics per part of a packed row: training standardised the spectrogram and the
    view of each speaker separately (per bin, per dimension), never the speaker column."""

    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        self.parts = {name: SpeakerStats() for name, _ in layout.parts if name != SPEAKER}

    @property
    def count(self) -> int:
        return min(stats.count for stats in self.parts.values())

    def update(self, x: torch.Tensor) -> PackedStats:
        split = self.layout.split(x)
        for name, stats in self.parts.items():
            stats.update(split[name])
        return self

    def standardize(self, x: torch.Tensor) -> torch.Tensor:
        split = self.layout.split(x)
        return self.layout.join(
            {
                name: self.parts[name].standardize(part) if name in self.parts else part
                for name, part in split.items()
            }
        )


def encoder_view(ckpt: Any) -> Callable[[np.ndarray], torch.Tensor]:
    """Windows at the checkpoint's rate -> the encoder view training cached for such a clip: [B, L, D]
    per-layer time means (or one layer's [B, D] for svm / feature_mlp), from model.encoder, which must hold
    the weights the view was made with."""
    from ser.config import ConfigError
    from ser.data.audio import fix_length
    from ser.data.embeddings import frozen_featurizer
    from ser.data.views import encoder_view_config, vector_layer

    cfg, layout = ckpt.cfg, Layout.from_record(ckpt.info["layout"])
    try:
        view_cfg, source = encoder_view_config(cfg)
        trained = ckpt.info.get("view_encoder")
        rate = int(source.sampling_rate)
        n_samples = int(round(float(cfg.data.audio.duration) * rate))
        states = frozen_featurizer(view_cfg, trained, n_samples)
    except ConfigError as exc:
        raise CheckpointError(f"{ckpt.path}: its fusion view needs its encoder: {exc}") from None
    own_rate, crop = int(cfg.data.audio.sample_rate), str(cfg.data.audio.crop)
    one_layer = len(layout.shape(VIEW)) == 1

    @torch.no_grad()
    def view(windows: np.ndarray) -> torch.Tensor:
        import librosa

        waves = windows
        if rate != own_rate:  # the same resampler that decoded training audio at the encoder's rate
            waves = librosa.resample(windows, orig_sr=own_rate, target_sr=rate, res_type="soxr_hq", axis=-1)
        waves = np.stack([fix_length(w, n_samples, crop=crop) for w in np.asarray(waves, dtype=np.float32)])
        out = states(torch.from_numpy(waves))
        return out[:, vector_layer(cfg, out.shape[1])] if one_layer and out.dim() == 3 else out

    return view


def packed_rows(
    path: Any,
    layout: Layout,
    main_name: str,
    main: torch.Tensor,
    view: Callable[[np.ndarray], torch.Tensor],
    windows: np.ndarray,
) -> torch.Tensor:
    """[B, width] rows in `layout`'s order from the main features, the view of `windows` and a zero
    speaker column."""
    parts: dict[str, torch.Tensor] = {main_name: main.float()}
    if layout.has(VIEW):
        parts[VIEW] = view(windows).float()
    if layout.has(SPEAKER):
        parts[SPEAKER] = torch.zeros(len(windows), 1)
    for name, shape in layout.parts:
        if name != SPEAKER and tuple(parts[name].shape[1:]) != tuple(shape):
            raise CheckpointError(
                f"{path}: this window's {name} part is {list(parts[name].shape[1:])}, the checkpoint's rows "
                f"hold {list(shape)}"
            )
    return layout.join(parts)
