"""EmotionDetector2: the tweaked EmotionDetector: BatchNorm everywhere, global pooling, 2-layer head.

Why the tweaks: BatchNorm after every conv steadies training at higher learning rates, and global average
pooling makes the head's input just the channel count, so the model has far fewer head weights and does
not care where in time/frequency a cue occurs.

Shapes at the defaults (depth 3, channels 32 x2 per block, 64 mels x 151 frames: 3 s at the 20 ms hop):
    [B, 1, 64, 151] -> conv blocks -> [B, 128, 8, 18] -> global average pool [B, 128]
    -> [Dropout] Linear(128, hidden) -> act -> [Dropout] Linear(hidden, n_classes) -> [B, n_classes]

Knobs read: depth, channels, channel_growth, max_channels, kernel_size, kernel_width, pool, activation,
dropout, conv_dropout, classifier_dropout, hidden. `batch_norm` is ignored (always on) and
`classifier_layers` is ignored (always 2): those are what make this variant.
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
from ser.models.components.emotion_detector import ConvStack


class EmotionDetector2(nn.Module):
    """[B, C, n_mels, frames] -> conv blocks with BatchNorm -> global avg pool -> 2-layer head -> logits."""

    def __init__(self, cfg: ModelConfig, input_shape: tuple[int, ...], n_classes: int) -> None:
        super().__init__()
        check_n_classes(n_classes)
        c, f, t = spectrogram_shape(input_shape, "emotion_detector2")
        check_range("depth", cfg.depth, 1)
        conv_p, head_p = dropout_rates(cfg)
        self.input_shape = (c, f, t)
        self.features = ConvStack(
            (c, f, t),
            channel_plan(cfg, cfg.depth),
            kernel_hw(cfg, f, t),
            batch_norm=True,
            activation=cfg.activation,
            pool=cfg.pool,
            dropout=conv_p,
        )
        out_c = self.features.out_shape[0]
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = make_head(out_c, n_classes, 2, cfg.hidden, cfg.activation, head_p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.flatten(self.pool(self.features(x)), 1))

    def describe(self) -> str:
        c, f, t = self.input_shape
        oc, h, w = self.features.out_shape
        return (
            f"EmotionDetector2: [B, {c}, {f}, {t}] -> {len(self.features.blocks)} conv+BN blocks -> "
            f"[B, {oc}, {h}, {w}] -> global pool [B, {oc}] -> 2-layer head -> "
            f"[B, {self.head[-1].out_features}]"
        )
