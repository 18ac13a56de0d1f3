"""FeatureMLP: an MLP over the fixed handcrafted vector, with an optional Conv1D front end.

Why: the 193-value vector (MFCC40 + chroma12 + mel128 + contrast7 + tonnetz6) is the classic SER
baseline; the Conv1D front end treats it as a 1-channel signal [B, 1, 193] so neighbouring mel/MFCC bins
share weights. Inputs should be standardised upstream (data.features.normalize), since the raw groups
differ in scale by orders of magnitude.

Shapes at the defaults (hidden 128, classifier_layers 1):
    [B, 193] -> Linear(193,128) -> [BatchNorm] -> act -> [Dropout] -> Linear(128,n_classes) -> [B, n_classes]
With conv1d (depth 3, channels 32 x2):
    [B, 193] -> [B, 1, 193] -> 3 Conv1D blocks pooling 2 -> [B, 128, 24] -> adaptive avg pool [B, 128, 8]
    -> flatten [B, 1024] -> the MLP above

Knobs read: hidden, classifier_layers (the number of hidden layers, each `hidden` wide; >= 1), batch_norm,
activation, dropout, classifier_dropout (after every hidden layer). With conv1d: depth, channels,
channel_growth, max_channels, kernel_size, pool, conv_dropout (Dropout1d after each conv block). Without
conv1d there is no conv stage, so placement `conv` adds no dropout. kernel_width is ignored (1-D).
"""

from __future__ import annotations

import torch
from torch import nn

from ser.config import ModelConfig
from ser.models.components.common import (
    bind,
    channel_plan,
    check_choice,
    check_n_classes,
    check_range,
    dropout_rates,
    fail,
    make_activation,
)

CONV_GRID = 8  # the Conv1D map is average-pooled to at most this length before the MLP
POOLS_1D = bind("model.pool", max=nn.MaxPool1d, avg=nn.AvgPool1d)


class FeatureMLP(nn.Module):
    """[B, D] -> [optional Conv1D front end] -> `classifier_layers` hidden layers -> logits [B, n_classes]."""

    def __init__(self, cfg: ModelConfig, input_shape: tuple[int, ...], n_classes: int) -> None:
        super().__init__()
        check_n_classes(n_classes)
        if len(input_shape) != 1 or input_shape[0] < 1:
            fail(
                "name",
                f"'feature_mlp' takes a feature vector (dim,); got input_shape {tuple(input_shape)}: "
                "use data.features.kind=handcrafted",
            )
        check_range("classifier_layers", cfg.classifier_layers, 1, family="feature_mlp")
        check_range("hidden", cfg.hidden, 1)
        conv_p, head_p = dropout_rates(cfg)
        self.input_dim = int(input_shape[0])
        self.front: nn.Module = nn.Identity()
        width = self.input_dim
        if cfg.conv1d:
            self.front, width = self._conv_front(cfg, conv_p)
        layers: list[nn.Module] = []
        for _ in range(cfg.classifier_layers):
            layers.append(nn.Linear(width, cfg.hidden, bias=not cfg.batch_norm))
            if cfg.batch_norm:
                layers.append(nn.BatchNorm1d(cfg.hidden))
            layers.append(make_activation(cfg.activation))
            if head_p > 0:
                layers.append(nn.Dropout(head_p))
            width = cfg.hidden
        layers.append(nn.Linear(width, n_classes))
        self.mlp = nn.Sequential(*layers)

    def _conv_front(self, cfg: ModelConfig, dropout: float) -> tuple[nn.Module, int]:
        """Conv1D blocks over [B, 1, D]: conv ('same') -> [BN] -> act -> [pool 2] -> [Dropout1d]."""
        check_range("depth", cfg.depth, 1)
        check_range("kernel_size", cfg.kernel_size, 1)
        check_choice("pool", cfg.pool, list(POOLS_1D))
        if cfg.kernel_size > self.input_dim:
            fail("kernel_size", f"kernel {cfg.kernel_size} is larger than the input vector {self.input_dim}")
        mods: list[nn.Module] = [nn.Unflatten(1, (1, self.input_dim))]
        c, length = 1, self.input_dim
        for out_c in channel_plan(cfg, cfg.depth):
            mods.append(nn.Conv1d(c, out_c, cfg.kernel_size, padding="same", bias=not cfg.batch_norm))
            if cfg.batch_norm:
                mods.append(nn.BatchNorm1d(out_c))
            mods.append(make_activation(cfg.activation))
            if length >= 2:
                mods.append(POOLS_1D[cfg.pool](2))
                length //= 2
            if dropout > 0:
                mods.append(nn.Dropout1d(dropout))
            c = out_c
        grid = min(CONV_GRID, length)
        mods += [nn.AdaptiveAvgPool1d(grid), nn.Flatten(1)]
        self.conv_shape = (c, length)
        return nn.Sequential(*mods), c * grid

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.front(x))

    def describe(self) -> str:
        front = ""
        if hasattr(self, "conv_shape"):
            c, length = self.conv_shape
            front = f" -> Conv1D [B, {c}, {length}] -> [B, {self.mlp[0].in_features}]"
        hidden = sum(isinstance(m, nn.Linear) for m in self.mlp) - 1
        return (
            f"FeatureMLP: [B, {self.input_dim}]{front} -> {hidden} hidden layer(s) -> "
            f"[B, {self.mlp[-1].out_features}]"
        )
