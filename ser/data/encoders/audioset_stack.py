"""An AudioSet encoder (yamnet.py, efficientat.py) as the ssl family's stack: waveforms [B, samples] ->
states [B, 1, D, T] (one state: the embedding before the AudioSet classifier, over T time steps), with the
attributes and fine-tuning hooks stack.EncoderStack has, so frozen caching, scoring and fine-tuning work
unchanged (ser/data/embeddings.py, ser/models/ssl.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ser.data.encoders.audioset import encoder_error, load_network


class AudioSetStack(nn.Module):
    """`network` (Yamnet or EfficientAT: forward gives [B, T, D]) -> [B, 1, D, T]."""

    seeded_dropout = False
    n_layers = 0  # one state: the embedding (LayerMix over one state is that state)

    def __init__(self, network: nn.Module, model_type: str) -> None:
        super().__init__()
        self.model = network
        self.model_type = model_type
        self.hidden_size = int(network.dim)

    @property
    def n_states(self) -> int:
        return 1

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        return self.model(wave).transpose(1, 2).unsqueeze(1)

    def scores(self, wave: torch.Tensor) -> torch.Tensor:
        """AudioSet class probabilities (YAMNet: per patch [B, P, C]; EfficientAT: per clip [B, C])."""
        return self.model.scores(wave)

    # ---- fine-tuning -------------------------------------------------------------------------------
    def freeze_feature_encoder(self) -> None:
        """Keep the first convolution (the stem over the log-mel) at its pretrained weights."""
        for param in self.model.stem_parameters():
            param.requires_grad_(False)

    def enable_gradient_checkpointing(self) -> None:
        raise encoder_error(
            f"{self.model_type} is small enough to fine-tune without it; "
            "set model.gradient_checkpointing=false"
        )

    def param_depths(self) -> Iterator[tuple[nn.Parameter, int]]:
        for param in self.model.parameters():
            yield param, 0


def build_audioset_stack(encoder: dict[str, Any], pretrained: bool) -> AudioSetStack:
    """The stack for `encoder` (an EncoderSource.record() plus `folder`): the file's weights, or (pretrained
    False) the recorded architecture untrained, for a checkpoint's state dict to fill."""
    kind = str(encoder["model_type"])
    config = dict(encoder["config"])
    if pretrained:
        path = Path(str(encoder["folder"])) / str(config["file"])
        if not path.is_file():
            raise encoder_error(f"file {path} does not exist")
        network = load_network(kind, path)
    elif kind == "yamnet":
        from ser.data.encoders.yamnet import Yamnet

        network = Yamnet(config["layout"])
    else:
        from ser.data.encoders.efficientat import EfficientAT

        network = EfficientAT(config["layout"])
    return AudioSetStack(network, kind).eval()
