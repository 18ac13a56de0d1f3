"""Dropout that draws its masks from the run's own `torch.Generator` instead of torch's global one.

The folds of a CV trial train in threads of one process; with torch's shared global generator their
dropout masks depend on how the threads interleave, so the same trial gives different curves from run to
run, and a resumed trial cannot repeat what an uninterrupted one drew. With one generator per model (seeded
from `trainer.seed` + fold, saved in checkpoints) every fold is a pure function of its config and data.
"""

from __future__ import annotations

import torch
from torch import nn

_CHANNEL_DIMS = {nn.Dropout: 0, nn.Dropout1d: 1, nn.Dropout2d: 2}


class SeededDropout(nn.Module):
    """nn.Dropout (`channelwise` False) or Dropout1d/2d (whole channels) with an injected generator."""

    def __init__(self, p: float, channelwise: bool, generator: torch.Generator) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout probability must be in [0, 1), got {p}")
        self.p, self.channelwise, self.generator = float(p), channelwise, generator

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        shape = (*x.shape[:2], *([1] * (x.dim() - 2))) if self.channelwise else x.shape
        g = self.generator
        keep = torch.rand(shape, generator=g, device=g.device).to(x.device) >= self.p
        return x * keep.to(x.dtype) / (1.0 - self.p)

    def extra_repr(self) -> str:
        return f"p={self.p}, channelwise={self.channelwise}"


def seed_dropout(module: nn.Module, generator: torch.Generator) -> nn.Module:
    """Replace every nn.Dropout / Dropout1d / Dropout2d inside `module` (in place) by a SeededDropout drawing
    from `generator`; returns `module`. (An LSTM's own inter-layer dropout stays on torch's generator, and
    so does a module marked `seeded_dropout = False`: a pretrained encoder, whose activations are too large
    for masks drawn on the CPU generator.)"""
    for name, child in list(module.named_children()):
        kind = type(child)
        if getattr(child, "seeded_dropout", True) is False:
            continue
        if kind in _CHANNEL_DIMS:
            setattr(module, name, SeededDropout(child.p, _CHANNEL_DIMS[kind] > 0, generator))
        else:
            seed_dropout(child, generator)
    return module
