"""SentAn: the simplified net: one to three conv layers with aggressive 4x4 pooling, then a small head.

Why it exists: a cheap baseline that tells whether depth buys anything on a corpus. Each conv layer pools
by 4 on both axes (an axis is pooled only down to 1), so one or two layers already reduce the map to a
few cells; depth is limited to 1-3 (1-2 is the intended range, 3 still fits the default input).

Shapes at depth 2 (channels 32 x2, 64 mels x 301 frames):
    [B, 1, 64, 301] -> conv+pool [B, 32, 16, 75] -> conv+pool [B, 64, 4, 18]
    -> adaptive average pool [B, 64, 4, 4] -> flatten [B, 1024] -> head -> [B, n_classes]

Knobs read: depth (1-3), channels, channel_growth, max_channels, kernel_size, kernel_width, batch_norm,
pool, activation, dropout, conv_dropout, classifier_dropout, hidden, classifier_layers.
"""

from __future__ import annotations

import torch
from torch import nn

from ser.config import ModelConfig
from ser.models.components.common import (
    channel_plan,
    check_n_classes,
    check_range,
    dropout_rates,
    kernel_hw,
    make_head,
    spectrogram_shape,
)
from ser.models.components.emotion_detector import HEAD_GRID, ConvStack

MAX_DEPTH = 3
POOL = (4, 4)


class SentAn(nn.Module):
    """[B, C, n_mels, frames] -> 1-3 conv layers pooling 4x4 -> adaptive avg pool -> FC head -> logits."""

    def __init__(self, cfg: ModelConfig, input_shape: tuple[int, ...], n_classes: int) -> None:
        super().__init__()
        check_n_classes(n_classes)
        c, f, t = spectrogram_shape(input_shape, "sentan")
        check_range("depth", cfg.depth, 1, MAX_DEPTH, family="sentan")
        conv_p, head_p = dropout_rates(cfg)
        self.input_shape = (c, f, t)
        self.features = ConvStack(
            (c, f, t),
            channel_plan(cfg, cfg.depth),
            kernel_hw(cfg, f, t),
            cfg.batch_norm,
            cfg.activation,
            cfg.pool,
            pool_size=POOL,
            dropout=conv_p,
        )
        out_c, h, w = self.features.out_shape
        self.grid = (min(HEAD_GRID, h), min(HEAD_GRID, w))
        self.pool = nn.AdaptiveAvgPool2d(self.grid)
        self.head = make_head(
            out_c * self.grid[0] * self.grid[1],
            n_classes,
            cfg.classifier_layers,
            cfg.hidden,
            cfg.activation,
            head_p,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.flatten(self.pool(self.features(x)), 1))

    def describe(self) -> str:
        c, f, t = self.input_shape
        oc, h, w = self.features.out_shape
        gh, gw = self.grid
        return (
            f"SentAn: [B, {c}, {f}, {t}] -> {len(self.features.blocks)} conv layers -> [B, {oc}, {h}, {w}] "
            f"-> pool [B, {oc}, {gh}, {gw}] -> head -> [B, {self.head[-1].out_features}]"
        )
