"""Feature normalisation as an nn.Module, so the statistics travel inside the checkpoint.

`train` statistics are fitted on the training split only (never val/test), per frequency bin; `utterance`
standardises each item on its own. Living in the model pipeline means `ser predict` applies exactly what
training applied without a side file.

`speaker` standardises each speaker's features with statistics over all of that speaker's utterances (no
labels), in every split: it removes who is speaking (base pitch, vocal tract, microphone level) but keeps
how one speaker's angry utterances differ from their calm ones, the cue that per-utterance normalisation
throws away. It is data-side (`standardize_groups`), so the model's normaliser is the identity; at
prediction time the files given together are taken as one speaker.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

MODES = ("none", "utterance", "train", "speaker")


def _stat_dims(x: torch.Tensor) -> tuple[int, ...]:
    """Items and time for features [N, C, F, T]; items for vectors [N, D]."""
    return (0, 3) if x.dim() == 4 else (0,)


class SpeakerStats:
    """Running per-bin sums over one speaker's feature frames [N, C, F, T] (or vectors [N, D]).

    Training standardises every speaker with these statistics over all their utterances
    (`standardize_groups`); prediction accumulates them over the files given together, and a live stream
    over the windows heard so far, so inference standardises the way training did.
    """

    def __init__(self) -> None:
        self.count = 0
        self.total: torch.Tensor | None = None
        self.total_sq: torch.Tensor | None = None

    @torch.no_grad()
    def update(self, x: torch.Tensor) -> SpeakerStats:
        x = x.detach().double()
        dims = _stat_dims(x)
        total, total_sq = x.sum(dim=dims, keepdim=True), (x * x).sum(dim=dims, keepdim=True)
        self.count += int(np.prod([x.shape[d] for d in dims]))
        self.total = total if self.total is None else self.total + total
        self.total_sq = total_sq if self.total_sq is None else self.total_sq + total_sq
        return self

    @torch.no_grad()
    def standardize(self, x: torch.Tensor) -> torch.Tensor:
        if self.total is None or self.total_sq is None:
            raise ValueError("speaker statistics are empty: update() them with the speaker's features first")
        mean = self.total / self.count
        var = (self.total_sq - self.count * mean * mean) / max(self.count - 1, 1)
        std = var.clamp_min(0.0).sqrt().clamp_min(1e-5)
        return ((x.double() - mean) / std).to(torch.float32)


@torch.no_grad()
def standardize_groups(x: torch.Tensor | np.ndarray, groups: Sequence[str]) -> torch.Tensor:
    """Standardise the rows of each group (speaker) with that group's own per-bin mean and sd; a new
    tensor (x, which may be a read-only memory-mapped array, is only read)."""
    if x.shape[0] != len(groups):
        raise ValueError(f"{x.shape[0]} rows but {len(groups)} group names")
    out = torch.tensor(x, dtype=torch.float32) if isinstance(x, np.ndarray) else x.float().clone()
    names = np.asarray(groups)
    for name in dict.fromkeys(groups):
        rows = torch.from_numpy(np.flatnonzero(names == name))
        part = out.index_select(0, rows)
        out.index_copy_(0, rows, SpeakerStats().update(part).standardize(part))
    return out


class FeatureNormalizer(nn.Module):
    """Standardise features [B, C, F, T] (per bin over items and time) or vectors [B, D] (per dimension)."""

    def __init__(self, mode: str, feature_shape: tuple[int, ...]) -> None:
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"data.features.normalize must be one of {MODES}, got {mode!r}")
        self.mode = mode
        stat_shape = self._stat_shape(feature_shape)
        self.register_buffer("mean", torch.zeros(stat_shape))
        self.register_buffer("std", torch.ones(stat_shape))

    @staticmethod
    def _stat_shape(feature_shape: tuple[int, ...]) -> tuple[int, ...]:
        if len(feature_shape) == 3:  # (C, F, T): one statistic per channel and bin
            return (feature_shape[0], feature_shape[1], 1)
        return tuple(feature_shape)

    @torch.no_grad()
    def fit(self, train_features: torch.Tensor) -> FeatureNormalizer:
        """Fit on the TRAIN split's features only; a no-op for the other modes."""
        if self.mode != "train":
            return self
        x = train_features.float()
        dims = _stat_dims(x)
        self.mean.copy_(x.mean(dim=dims).reshape(self.mean.shape))
        self.std.copy_(x.std(dim=dims).clamp_min(1e-5).reshape(self.std.shape))
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode in ("none", "speaker"):  # speaker: standardised data-side (standardize_groups)
            return x
        if self.mode == "utterance":
            dims = tuple(range(1, x.dim()))
            mean = x.mean(dim=dims, keepdim=True)
            std = x.std(dim=dims, keepdim=True).clamp_min(1e-5)
            return (x - mean) / std
        return (x - self.mean) / self.std
