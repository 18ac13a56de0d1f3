"""The `ssl` family's network: an SSLHead over cached hidden states (frozen), or the encoder stack
(ser/data/encoders) and the head trained together on waveforms (finetune), with per-parameter learning-rate
scales for the encoder.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from ser.config import ModelConfig
from ser.models.components.common import ModelConfigError, fail
from ser.models.components.ssl_head import SSLHead


class SSLNet(nn.Module):
    """[B, L, D(, T)] cached states, or [B, samples] waveforms through `encoder` -> logits [B, n_classes]."""

    def __init__(
        self,
        head: SSLHead,
        encoder: nn.Module | None = None,
        encoder_lr_scale: float = 1.0,
        layer_lr_decay: float = 1.0,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = head
        self.encoder_lr_scale, self.layer_lr_decay = float(encoder_lr_scale), float(layer_lr_decay)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x) if self.encoder is not None else x)

    def param_lr_scales(self) -> Iterator[tuple[nn.Parameter, float]]:
        """Encoder parameters' learning-rate multipliers (the optimiser groups by them; the head's is 1):
        encoder_lr_scale * layer_lr_decay ** (L + 1 - depth), depth 0 = input embedding, L = top layer."""
        if self.encoder is None:
            return
        top = self.encoder.n_layers + 1
        for param, depth in self.encoder.param_depths():
            yield param, self.encoder_lr_scale * self.layer_lr_decay ** (top - depth)

    def describe(self) -> str:
        if self.encoder is None:
            return self.head.describe()
        trainable = sum(p.numel() for p in self.encoder.parameters() if p.requires_grad)
        total = sum(p.numel() for p in self.encoder.parameters())
        return (
            f"SSL fine-tune: {self.encoder.model_type} encoder ({trainable:,} of {total:,} parameters "
            f"trained) -> {self.head.describe()}"
        )


def build_ssl(
    cfg: ModelConfig, input_shape: tuple[int, ...], n_classes: int, encoder: dict[str, Any] | None = None
) -> SSLNet:
    """Frozen: a head for cached states of `input_shape` (layers, dim[, frames]). Finetune: the encoder
    described by `encoder` (ser.data.embeddings: its record, local folder and `pretrained`: False when a
    checkpoint's weights will fill it) on waveforms of `input_shape` (samples,), then the head."""
    if cfg.ssl_mode == "frozen":
        return SSLNet(SSLHead(cfg, input_shape, n_classes))
    if len(input_shape) != 1:
        fail("ssl_mode", f"finetune takes waveforms (samples,), got input_shape {tuple(input_shape)}")
    if encoder is None:
        raise ModelConfigError("invalid config key 'model.ssl_mode': finetune needs the encoder's record")
    from ser.data.encoders.stack import build_stack

    stack = build_stack(encoder, int(input_shape[0]), pretrained=bool(encoder.get("pretrained", True)))
    stack.train()  # Lightning keeps modules' modes: its dropout, LayerDrop and time masking must be on
    if cfg.freeze_feature_encoder:
        stack.freeze_feature_encoder()
    if cfg.gradient_checkpointing:
        stack.enable_gradient_checkpointing()
    head = SSLHead(cfg, (stack.n_states, stack.hidden_size, 1), n_classes)
    return SSLNet(head, stack, cfg.encoder_lr_scale, cfg.layer_lr_decay)
