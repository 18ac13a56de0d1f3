"""CnnLstm: a conv front end that pools only frequency, an LSTM over time, then a pooled summary.

Why: emotion lives partly in how prosody evolves; pooling only the frequency axis keeps every frame for
the LSTM, and attention pooling lets the model weight the frames that carry the emotion.

Shapes at the defaults (depth 3, channels 32 x2, lstm_hidden 128, bidirectional, 64 mels x 151 frames,
3 s at the 20 ms hop):
    [B, 1, 64, 151] -> conv blocks pooling (2, 1) -> [B, 128, 8, 151] -> frames [B, 151, 128 * 8]
    -> LSTM -> [B, 151, 2 * 128] -> time pooling (last | mean | attention) [B, 256] -> head -> [B, n_classes]

Knobs read: depth (1-4 conv blocks), channels, channel_growth, max_channels, kernel_size, kernel_width,
batch_norm, pool, activation, lstm_hidden, lstm_layers, bidirectional, lstm_pooling, dropout, conv_dropout
(Dropout2d after each conv block and between stacked LSTM layers), classifier_dropout, hidden,
classifier_layers.
"""

from __future__ import annotations

import torch
from torch import nn

from ser.config import CHOICES, ModelConfig
from ser.models.components.common import (
    channel_plan,
    check_choice,
    check_n_classes,
    check_range,
    dropout_rates,
    kernel_hw,
    make_head,
    spectrogram_shape,
)
from ser.models.components.emotion_detector import ConvStack

MAX_DEPTH = 4
LSTM_POOLINGS = CHOICES["model.lstm_pooling"]


class AdditiveAttention(nn.Module):
    """Bahdanau-style pooling: score_t = v . tanh(W h_t + b); [B, T, D] -> softmax-weighted sum [B, D]."""

    def __init__(self, dim: int, attn_dim: int) -> None:
        super().__init__()
        self.proj = nn.Linear(dim, attn_dim)
        self.score = nn.Linear(attn_dim, 1, bias=False)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        weights = torch.softmax(self.score(torch.tanh(self.proj(h))), dim=1)  # [B, T, 1]
        return (weights * h).sum(dim=1)


class CnnLstm(nn.Module):
    """[B, C, n_mels, frames] -> conv (frequency pooling) -> LSTM over frames -> time pooling -> logits."""

    def __init__(self, cfg: ModelConfig, input_shape: tuple[int, ...], n_classes: int) -> None:
        super().__init__()
        check_n_classes(n_classes)
        c, f, t = spectrogram_shape(input_shape, "cnn_lstm")
        check_range("depth", cfg.depth, 1, MAX_DEPTH, family="cnn_lstm")
        check_range("lstm_hidden", cfg.lstm_hidden, 1)
        check_range("lstm_layers", cfg.lstm_layers, 1)
        check_choice("lstm_pooling", cfg.lstm_pooling, LSTM_POOLINGS)
        conv_p, head_p = dropout_rates(cfg)
        self.input_shape = (c, f, t)
        self.features = ConvStack(
            (c, f, t),
            channel_plan(cfg, cfg.depth),
            kernel_hw(cfg, f, t),
            cfg.batch_norm,
            cfg.activation,
            cfg.pool,
            pool_size=(2, 1),
            dropout=conv_p,
        )
        out_c, out_f, _ = self.features.out_shape
        self.lstm = nn.LSTM(
            out_c * out_f,
            cfg.lstm_hidden,
            num_layers=cfg.lstm_layers,
            batch_first=True,
            bidirectional=cfg.bidirectional,
            dropout=conv_p if cfg.lstm_layers > 1 else 0.0,
        )
        self.directions = 2 if cfg.bidirectional else 1
        out_dim = self.directions * cfg.lstm_hidden
        self.pooling = cfg.lstm_pooling
        self.attention = AdditiveAttention(out_dim, cfg.lstm_hidden) if self.pooling == "attention" else None
        self.head = make_head(out_dim, n_classes, cfg.classifier_layers, cfg.hidden, cfg.activation, head_p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classify(self.features(x))

    def classify(self, z: torch.Tensor) -> torch.Tensor:
        """Conv map [B, C', F', T] -> logits: the LSTM over frames, time pooling and the head (apart from
        the conv stack so a fused run can share the convolutions of K models and run their LSTMs)."""
        frames = z.flatten(1, 2).transpose(1, 2)  # [B, T, C' * F']
        out, (h_n, _) = self.lstm(frames)  # out [B, T, dirs * H]; h_n [layers * dirs, B, H]
        if self.pooling == "last":
            summary = h_n[-self.directions :].transpose(0, 1).flatten(1)  # last layer, every direction
        elif self.pooling == "mean":
            summary = out.mean(dim=1)
        else:
            assert self.attention is not None
            summary = self.attention(out)
        return self.head(summary)

    def describe(self) -> str:
        c, f, t = self.input_shape
        oc, of, ot = self.features.out_shape
        lstm = self.lstm
        return (
            f"CnnLstm: [B, {c}, {f}, {t}] -> {len(self.features.blocks)} conv blocks -> [B, {oc}, {of}, {ot}]"
            f" -> frames [B, {ot}, {oc * of}] -> {'bi' if lstm.bidirectional else 'uni'}LSTM x"
            f"{lstm.num_layers} [B, {ot}, {self.directions * lstm.hidden_size}] -> {self.pooling} pooling "
            f"-> head -> [B, {self.head[-1].out_features}]"
        )
