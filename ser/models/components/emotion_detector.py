"""EmotionDetector: a stack of Conv2D blocks over a log-mel spectrogram, then a small FC head.

Shapes at the defaults (depth 3, channels 32 x2 per block, 64 mels x 151 frames: 3 s at a 20 ms hop):
    [B, 1, 64, 151] -> block 1 [B, 32, 32, 75] -> block 2 [B, 64, 16, 37] -> block 3 [B, 128, 8, 18]
    -> adaptive average pool [B, 128, 4, 4] -> flatten [B, 2048] -> head -> logits [B, n_classes]
With `time_pooling` stats (or attention): [B, 128, 8, 18] -> frequency pooled to 4 rows [B, 512, 18]
    -> mean and sd over time (attention-weighted) [B, 1024] -> head

Pooling adapts per axis: an axis is pooled by 2 only while it is still >= 2, so 10 blocks on the default
input end on a 1x1 map instead of an empty one. The adaptive pool to a fixed (<= 4x4) grid keeps the head's
input, and so the parameter count, independent of depth and clip length.

Knobs read: depth, channels, channel_growth, max_channels, kernel_size, kernel_width, batch_norm, pool,
activation, dropout, conv_dropout, classifier_dropout, hidden, classifier_layers, time_pooling.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ser.config import CHOICES, ModelConfig
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
TIME_POOLINGS = CHOICES["model.time_pooling"]


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


class TimeStatsPooling(nn.Module):
    """[B, C, H, W] conv map -> [B, 2 * C * h]: the frequency axis average-pooled to h <= 4 rows, then the
    mean and standard deviation of every (channel, row) over time, optionally attention-weighted (attentive
    statistics pooling, Okabe et al. 2018). Unlike the fixed grid, it does not care where in the clip a cue
    occurs, only how often and how strongly."""

    def __init__(self, channels: int, height: int, attention: bool, hidden: int = 64) -> None:
        super().__init__()
        self.rows = min(HEAD_GRID, height)
        self.freq_pool = nn.AdaptiveAvgPool2d((self.rows, None))
        width = channels * self.rows
        self.attention: nn.Module | None = None
        if attention:  # a score per frame from every (channel, row): Conv1d over time with kernel 1
            self.attention = nn.Sequential(nn.Conv1d(width, hidden, 1), nn.Tanh(), nn.Conv1d(hidden, 1, 1))
        self.out_features = 2 * width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        frames = torch.flatten(self.freq_pool(x), 1, 2)  # [B, C * h, W]
        if self.attention is None:
            weights = torch.full_like(frames[:, :1], 1.0 / frames.shape[-1])
        else:
            weights = torch.softmax(self.attention(frames), dim=-1)  # [B, 1, W]
        mean = (frames * weights).sum(dim=-1)
        var = ((frames - mean.unsqueeze(-1)).square() * weights).sum(dim=-1)
        return torch.cat([mean, var.clamp_min(1e-6).sqrt()], dim=1)


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
        check_choice("time_pooling", cfg.time_pooling, TIME_POOLINGS)
        self.time_pooling = cfg.time_pooling
        if cfg.time_pooling == "grid":
            self.grid = (min(HEAD_GRID, h), min(HEAD_GRID, w))
            self.pool: nn.Module = nn.Sequential(nn.AdaptiveAvgPool2d(self.grid), nn.Flatten(1))
            head_in = out_c * self.grid[0] * self.grid[1]
        else:
            stats = TimeStatsPooling(out_c, h, attention=cfg.time_pooling == "attention")
            self.grid = (stats.rows, w)
            self.pool = stats
            head_in = stats.out_features
        self.head = make_head(
            head_in,
            n_classes,
            cfg.classifier_layers,
            cfg.hidden,
            cfg.activation,
            head_p,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.pool(self.features(x)))

    def describe(self) -> str:
        c, f, t = self.input_shape
        oc, h, w = self.features.out_shape
        if self.time_pooling != "grid":
            return (
                f"{self.TITLE}: [B, {c}, {f}, {t}] -> {len(self.features.blocks)} conv blocks -> "
                f"[B, {oc}, {h}, {w}] -> {self.time_pooling} pooling over time [B, {self.pool.out_features}]"
                f" -> head -> [B, {self.head[-1].out_features}]"
            )
        gh, gw = self.grid
        return (
            f"{self.TITLE}: [B, {c}, {f}, {t}] -> {len(self.features.blocks)} conv blocks -> "
            f"[B, {oc}, {h}, {w}] -> pool [B, {oc}, {gh}, {gw}] -> head -> "
            f"[B, {self.head[-1].out_features}]"
        )
