"""SentAn: the simplified net: one to three conv layers with aggressive 4x4 pooling, then a small head.

Why it exists: a cheap baseline that tells whether depth buys anything on a corpus. Each conv layer pools
by 4 on both axes (an axis is pooled only down to 1), so one or two layers already reduce the map to a
few cells; depth is limited to 1-3 (1-2 is the intended range, 3 still fits the default input).

Shapes at depth 2 (channels 32 x2, 64 mels x 151 frames: 3 s at the 20 ms hop):
    [B, 1, 64, 151] -> conv+pool [B, 32, 16, 37] -> conv+pool [B, 64, 4, 9]
    -> adaptive average pool [B, 64, 4, 4] -> flatten [B, 1024] -> head -> [B, n_classes]

Knobs read: depth (1-3), channels, channel_growth, max_channels, kernel_size, kernel_width, batch_norm,
pool, activation, dropout, conv_dropout, classifier_dropout, hidden, classifier_layers.
"""

from __future__ import annotations

from ser.models.components.emotion_detector import EmotionDetector


class SentAn(EmotionDetector):
    """[B, C, n_mels, frames] -> 1-3 conv layers pooling 4x4 -> adaptive avg pool -> FC head -> logits."""

    FAMILY = "sentan"
    TITLE = "SentAn"
    MAX_DEPTH = 3
    POOL_SIZE = (4, 4)
