"""EmotionDetector: a stack of Conv2D blocks over a log-mel spectrogram, then a small FC head.

Shapes at the defaults (depth 3, channels 32 x2 per block, 64 mels x 301 frames):
    [B, 1, 64, 301] -> block 1 [B, 32, 32, 150] -> block 2 [B, 64, 16, 75] -> block 3 [B, 128, 8, 37]
    -> adaptive average pool [B, 128, 4, 4] -> flatten [B, 2048] -> head -> logits [B, n_classes]

Pooling adapts per axis: an axis is pooled by 2 only while it is still >= 2, so 10 blocks on the default
input end on a 1x1 map instead of an empty one. The adaptive pool to a fixed (<= 4x4) grid keeps the head's
input, and so the parameter count, independent of depth and clip length.

Knobs read: depth, channels, channel_growth, max_channels, kernel_size, kernel_width, batch_norm, pool,
activation, dropout, conv_dropout, classifier_dropout, hidden, classifier_layers.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ser.config import ModelConfig
from ser.models.components.common import (
    POOLS,
    channel_plan,
    check_choice,
    check_n_classes,
    check_range,
    dropout_rates,
    kernel_hw,
    make_activation,
    make_head,
    spectrogram_shape,
)

HEAD_GRID = 4  # the final map is average-pooled to at most HEAD_GRID x HEAD_GRID before the head


class ConvStack(nn.Module):
    """Conv2D blocks: conv ('same') -> [BatchNorm] -> activation -> [pool] -> [Dropout2d].

    `pool_size` (ph, pw) is the per-block pooling factor; an axis smaller than its factor is pooled only
    down to 1. `out_shape` is the (channels, height, width) the stack produces for `in_shape`.
    """

    def __init__(
        self,
        in_shape: tuple[int, int, int],
        channels: Sequence[int],
        kernel: tuple[int, int],
        batch_norm: bool,
        activation: str,
        pool: str,
        pool_size: tuple[int, int] = (2, 2),
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        check_choice("pool", pool, list(POOLS))
        c, h, w = in_shape
        blocks: list[nn.Module] = []
        for out_c in channels:
            mods: list[nn.Module] = [nn.Conv2d(c, out_c, kernel, padding="same", bias=not batch_norm)]
            if batch_norm:
                mods.append(nn.BatchNorm2d(out_c))
            mods.append(make_activation(activation))
            ph, pw = min(pool_size[0], h), min(pool_size[1], w)
            if ph > 1 or pw > 1:
                mods.append(POOLS[pool]((ph, pw)))
                h, w = h // ph, w // pw
            if dropout > 0:
                mods.append(nn.Dropout2d(dropout))
            blocks.append(nn.Sequential(*mods))
            c = out_c
        self.blocks = nn.Sequential(*blocks)
        self.out_shape = (c, h, w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(x)


class EmotionDetector(nn.Module):
    """[B, C, n_mels, frames] -> `depth` conv blocks -> adaptive avg pool (<= 4x4) -> FC head -> logits.

    Subclasses change only the class attributes: the family name in errors, the depth limit and the
    per-block pooling (SentAn)."""

    FAMILY = "emotion_detector"
    TITLE = "EmotionDetector"
    MAX_DEPTH: int | None = None
    POOL_SIZE = (2, 2)

    def __init__(self, cfg: ModelConfig, input_shape: tuple[int, ...], n_classes: int) -> None:
        super().__init__()
        check_n_classes(n_classes)
        c, f, t = spectrogram_shape(input_shape, self.FAMILY)
        if self.MAX_DEPTH is None:
            check_range("depth", cfg.depth, 1)
        else:
            check_range("depth", cfg.depth, 1, self.MAX_DEPTH, family=self.FAMILY)
        conv_p, head_p = dropout_rates(cfg)
        self.input_shape = (c, f, t)
        self.features = ConvStack(
            (c, f, t),
            channel_plan(cfg, cfg.depth),
            kernel_hw(cfg, f, t),
            cfg.batch_norm,
            cfg.activation,
            cfg.pool,
            pool_size=self.POOL_SIZE,
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
            f"{self.TITLE}: [B, {c}, {f}, {t}] -> {len(self.features.blocks)} conv blocks -> "
            f"[B, {oc}, {h}, {w}] -> pool [B, {oc}, {gh}, {gw}] -> head -> "
            f"[B, {self.head[-1].out_features}]"
        )
