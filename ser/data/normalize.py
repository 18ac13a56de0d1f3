"""Feature normalisation as an nn.Module, so the statistics travel inside the checkpoint.

`train` statistics are fitted on the training split only (never val/test), per frequency bin; `utterance`
standardises each item on its own. Living in the model pipeline means `ser predict` applies exactly what
training applied without a side file.
"""

from __future__ import annotations

import torch
from torch import nn

MODES = ("none", "utterance", "train")


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
        dims = (0, 3) if x.dim() == 4 else (0,)
        self.mean.copy_(x.mean(dim=dims).reshape(self.mean.shape))
        self.std.copy_(x.std(dim=dims).clamp_min(1e-5).reshape(self.std.shape))
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "none":
            return x
        if self.mode == "utterance":
            dims = tuple(range(1, x.dim()))
            mean = x.mean(dim=dims, keepdim=True)
            std = x.std(dim=dims, keepdim=True).clamp_min(1e-5)
            return (x - mean) / std
        return (x - self.mean) / self.std
