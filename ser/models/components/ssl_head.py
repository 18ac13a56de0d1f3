"""SSLHead: a small classifier over a pretrained encoder's hidden states (the SUPERB / EmoBox probe).

Shapes (L states: input embedding + layers, D hidden size, T frames):
    per-layer time means [B, L, D] (the frozen cache when pooling is mean)
        -> layer mix [B, D] -> MLP -> logits [B, n_classes]
    frames [B, L, D, T] (stats/attention pooling, or the encoder itself when fine-tuning)
        -> layer mix [B, D, T] -> pooling over time [B, D] (mean) or [B, 2D] (stats, attention) -> MLP

The layer mix is a learned softmax-weighted sum of every layer (`model.layer: weighted`) or one layer
(`last` or an index). The mean over time commutes with the weighted sum, so per-layer means give exactly
what frames would with mean pooling, at 1/T of the cache; stats and attention (attentive statistics
pooling, Okabe et al. 2018) need the frames.

Knobs read: layer, ssl_pooling, classifier_layers (1: linear probe, 2: one hidden layer), hidden,
activation, dropout and classifier_dropout (placements classifier/both, before each Linear).
"""

from __future__ import annotations

import torch
from torch import nn

from ser.config import CHOICES, ModelConfig
from ser.models.components.common import check_choice, check_n_classes, dropout_rates, fail, make_head

POOLINGS = CHOICES["model.ssl_pooling"]


def layer_index(layer: str, n_states: int) -> int | None:
    """None for the weighted mix, else the state to read: `last` or an index below n_states."""
    text = str(layer)
    if text == "weighted":
        return None
    if text == "last":
        return n_states - 1
    if not text.isdigit() or int(text) >= n_states:
        fail("layer", f"{layer!r} must be weighted, last or an index 0..{n_states - 1} (this encoder's)")
    return int(text)


class LayerMix(nn.Module):
    """[B, L, ...] -> [B, ...]: softmax(w) weighted sum over layers (w starts equal), or one layer."""

    def __init__(self, n_states: int, index: int | None) -> None:
        super().__init__()
        self.index, self.n_states = index, n_states
        self.weights = nn.Parameter(torch.zeros(n_states)) if index is None else None

    def forward(self, states: torch.Tensor) -> torch.Tensor:
        if self.weights is None:
            return states[:, self.index]
        w = torch.softmax(self.weights, dim=0).to(states.dtype)
        return torch.einsum("l,bl...->b...", w, states)

    def layer_weights(self) -> torch.Tensor:
        """The mix as probabilities over layers (one-hot for a chosen layer), for reports."""
        if self.weights is None:
            return nn.functional.one_hot(torch.tensor(self.index), self.n_states).float()
        return torch.softmax(self.weights.detach(), dim=0)


class FramePooling(nn.Module):
    """[B, D, T] -> [B, D] (mean) or [B, 2D] (mean and sd, attention-weighted for `attention`)."""

    def __init__(self, mode: str, dim: int, attention_hidden: int = 128) -> None:
        super().__init__()
        check_choice("ssl_pooling", mode, POOLINGS)
        self.mode = mode
        self.attention = None
        if mode == "attention":
            self.attention = nn.Sequential(
                nn.Conv1d(dim, attention_hidden, 1), nn.Tanh(), nn.Conv1d(attention_hidden, 1, 1)
            )
        self.out_features = dim if mode == "mean" else 2 * dim

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        if self.mode == "mean":
            return frames.mean(dim=-1)
        if self.attention is None:
            weights = torch.full_like(frames[:, :1], 1.0 / frames.shape[-1])
        else:
            weights = torch.softmax(self.attention(frames), dim=-1)
        mean = (frames * weights).sum(dim=-1)
        var = ((frames - mean.unsqueeze(-1)).square() * weights).sum(dim=-1)
        return torch.cat([mean, var.clamp_min(1e-6).sqrt()], dim=1)


class SSLHead(nn.Module):
    """Hidden states [B, L, D] or [B, L, D, T] -> logits [B, n_classes] (see the module docstring)."""

    def __init__(self, cfg: ModelConfig, input_shape: tuple[int, ...], n_classes: int) -> None:
        super().__init__()
        check_n_classes(n_classes)
        if len(input_shape) not in (2, 3) or min(input_shape) < 1:
            fail(
                "name",
                f"'ssl' heads take encoder states (layers, dim) or (layers, dim, frames); got input_shape "
                f"{tuple(input_shape)}",
            )
        n_states, dim = int(input_shape[0]), int(input_shape[1])
        self.frames = len(input_shape) == 3
        if not self.frames and cfg.ssl_pooling != "mean":
            fail("ssl_pooling", f"{cfg.ssl_pooling!r} needs frame-level states; these are time means")
        self.mix = LayerMix(n_states, layer_index(cfg.layer, n_states))
        self.pool = FramePooling(cfg.ssl_pooling, dim) if self.frames else None
        width = self.pool.out_features if self.pool is not None else dim
        _, head_p = dropout_rates(cfg)
        self.head = make_head(width, n_classes, cfg.classifier_layers, cfg.hidden, cfg.activation, head_p)
        self.input_shape = tuple(int(d) for d in input_shape)

    def forward(self, states: torch.Tensor) -> torch.Tensor:
        mixed = self.mix(states.float())
        return self.head(self.pool(mixed) if self.pool is not None else mixed)

    def describe(self) -> str:
        mix = "weighted sum" if self.mix.index is None else f"layer {self.mix.index}"
        pool = f" -> {self.pool.mode} pooling" if self.pool is not None else ""
        hidden = sum(isinstance(m, nn.Linear) for m in self.head) - 1
        return (
            f"SSL head: [B, {', '.join(map(str, self.input_shape))}] -> {mix} of {self.input_shape[0]} states"
            f"{pool} -> {hidden} hidden layer(s) -> [B, {self.head[-1].out_features}]"
        )
