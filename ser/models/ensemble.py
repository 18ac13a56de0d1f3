"""An ensemble of K networks of one architecture as one network: the mean of their class probabilities.

Members are trained one by one (each its own seed, each checkpoint chosen on validation like any fold);
`EnsembleNet` then holds them so that the ensemble is an ordinary `EmotionClassifier` checkpoint: the same
front end, and a network whose output is the log of the members' mean probability, so softmax (what
`ser predict`, `live`, `serve` and `evaluate` apply) gives exactly that mean.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class EnsembleNet(nn.Module):
    """[B, ...] -> log of the mean of the members' softmax [B, n_classes]."""

    def __init__(self, members: Sequence[nn.Module]) -> None:
        super().__init__()
        if len(members) < 2:
            raise ValueError(f"an ensemble needs at least 2 members, got {len(members)}")
        self.members = nn.ModuleList(members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        probabilities = torch.stack([torch.softmax(m(x), dim=-1) for m in self.members]).mean(dim=0)
        return torch.log(probabilities.clamp_min(1e-12))

    def describe(self) -> str:
        first = self.members[0]
        inner = first.describe() if hasattr(first, "describe") else type(first).__name__
        return f"ensemble of {len(self.members)} x ({inner}), probabilities averaged"
