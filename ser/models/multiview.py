"""A CNN with a second view (early or late fusion) and/or a speaker adversary, over packed rows
(ser.data.views): the pieces the multi-view pipeline wraps around any CNN family.

- early fusion: the CNN's pooled embedding (its head's input) concatenated with the view (a frozen
  encoder's per-layer means mixed by learned layer weights, as the ssl head does), then one head;
- late fusion: the CNN with its own head and a head on the view (FeatureMLP on a vector, the ssl head on
  encoder states), each trained on its own cross-entropy as it would be alone (no parameter is shared),
  scored as the average of their probabilities (`model.fusion_weight` is the CNN's share); checkpoint
  selection and early stopping watch the averaged model;
- the adversary: a speaker classifier on the CNN's pooled embedding behind a gradient reversal layer
  (Ganin & Lempitsky 2015): it learns to name the training speaker, while the reversed, weighted gradient
  (`model.adversary_weight`) pushes the CNN to an embedding from which the speaker cannot be read.

Shapes: packed rows [B, width] -> {spectrogram [B, C, F, T], view [B, D] or [B, L, D], speaker [B, 1]}.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ser.config import ModelConfig
from ser.data.views import SPEAKER, SPECTROGRAM, VIEW, Layout
from ser.models.components.common import dropout_rates, fail, make_head


class _ReverseGradient(torch.autograd.Function):
    """Identity forward; backward multiplies the gradient by -weight."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, weight: float) -> torch.Tensor:
        ctx.weight = weight
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return -ctx.weight * grad, None


def reverse_gradient(x: torch.Tensor, weight: float) -> torch.Tensor:
    """x unchanged; the gradient that flows back through it is -weight times the incoming one."""
    return _ReverseGradient.apply(x, float(weight))


def split_head(cnn: nn.Module) -> tuple[nn.Module, int]:
    """Take the classifier head off a CNN family (every one ends in `self.head`, a make_head Sequential
    over its pooled embedding): (the head, the embedding width); `cnn` then returns the embedding."""
    head = getattr(cnn, "head", None)
    linears = [m for m in head.modules() if isinstance(m, nn.Linear)] if isinstance(head, nn.Module) else []
    if not linears:
        fail("fusion", f"{type(cnn).__name__} has no classifier head over a pooled embedding to fuse at")
    cnn.head = nn.Identity()
    return head, int(linears[0].in_features)


class ViewMix(nn.Module):
    """[B, D] -> itself; [B, L, D] encoder states -> [B, D] by learned softmax layer weights (or one layer,
    model.layer), the ssl head's mix."""

    def __init__(self, cfg: ModelConfig, shape: tuple[int, ...]) -> None:
        super().__init__()
        from ser.models.components.ssl_head import LayerMix, layer_index

        self.mix = LayerMix(shape[0], layer_index(cfg.layer, shape[0])) if len(shape) == 2 else None
        self.out_features = int(shape[-1])

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        return v if self.mix is None else self.mix(v)


def view_classifier(cfg: ModelConfig, shape: tuple[int, ...], n_classes: int) -> nn.Module:
    """Late fusion's model of the view alone: FeatureMLP on a vector, the ssl head on encoder states."""
    if len(shape) == 2:
        from ser.models.components.ssl_head import SSLHead

        return SSLHead(cfg, shape, n_classes)
    from ser.models.components.feature_mlp import FeatureMLP

    return FeatureMLP(cfg, shape, n_classes)


class MultiViewNet(nn.Module):
    """Packed rows [B, width] -> logits [B, n_classes] (late fusion: the log of the averaged probabilities,
    so softmax gives the average). In training, `training_terms()` hands the classifier what its loss needs
    besides the logits: late fusion's branch logits, the adversary's speaker logits and labels."""

    def __init__(self, cfg: ModelConfig, layout: Layout, cnn: nn.Module, n_classes: int) -> None:
        super().__init__()
        self.layout, self.mode = layout, str(cfg.fusion)
        self.fusion_weight, self.adversary_weight = float(cfg.fusion_weight), float(cfg.adversary_weight)
        head, width = split_head(cnn)
        self.width = width
        # registered first: the report's penultimate-layer hook takes the LAST Linear with n_classes outputs
        self.adversary: nn.Module | None = None
        if self.adversary_weight > 0:
            if layout.n_speakers < 2:
                fail("adversary_weight", f"needs at least 2 speakers, the data has {layout.n_speakers}")
            self.adversary = make_head(width, layout.n_speakers, 2, cfg.hidden, cfg.activation, 0.0)
        self.view_model: nn.Module | None = None
        if self.mode == "late":
            self.view_model = view_classifier(cfg, layout.shape(VIEW), n_classes)
        self.cnn = cnn
        self.view_mix: nn.Module | None = None
        if self.mode == "early":
            self.view_mix = ViewMix(cfg, layout.shape(VIEW))
            _, head_p = dropout_rates(cfg)
            head = make_head(
                width + self.view_mix.out_features, n_classes, cfg.classifier_layers, cfg.hidden,
                cfg.activation, head_p,
            )
        self.head = head
        self._terms: dict[str, Any] = {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        parts = self.layout.split(x)
        z = self.cnn(parts[SPECTROGRAM])
        terms: dict[str, Any] = {}
        if self.mode == "early":
            logits = self.head(torch.cat([z, self.view_mix(parts[VIEW])], dim=1))
        elif self.mode == "late":
            own, other = self.head(z), self.view_model(parts[VIEW])
            w = self.fusion_weight
            mixed = w * torch.softmax(own, dim=-1) + (1.0 - w) * torch.softmax(other, dim=-1)
            logits = torch.log(mixed.clamp_min(1e-12))
            terms["branches"] = [own, other]
        else:
            logits = self.head(z)
        if self.adversary is not None and self.training:
            speakers = parts[SPEAKER][:, 0].round().long()
            terms["adversary"] = (self.adversary(reverse_gradient(z, self.adversary_weight)), speakers)
        self._terms = terms if self.training else {}
        return logits

    def training_terms(self) -> dict[str, Any]:
        """What the last training forward left for the loss (taken once)."""
        terms, self._terms = self._terms, {}
        return terms

    def describe(self) -> str:
        inner = f"{type(self.cnn).__name__} pooled embedding [B, {self.width}]"
        shape = list(self.layout.shape(VIEW)) if self.mode != "none" else []
        view = f"{self.mode} fusion with a view {shape}" if self.mode != "none" else ""
        adv = f"speaker adversary (gradient reversal x{self.adversary_weight:g})" if self.adversary else ""
        return f"{inner} + " + " + ".join(p for p in (view, adv) if p)


class ViewsFrontend(nn.Module):
    """Packed rows -> packed rows: the spectrogram through its stages (normaliser, delta channels), the view
    through its normaliser (training-split statistics, or the identity when standardised per speaker)."""

    def __init__(self, layout: Layout, out_layout: Layout, spectrogram: nn.Module, view: nn.Module) -> None:
        super().__init__()
        self.layout, self.out_layout = layout, out_layout
        self.spectrogram, self.view = spectrogram, view

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        parts = self.layout.split(x)
        parts[SPECTROGRAM] = self.spectrogram(parts[SPECTROGRAM])
        if VIEW in parts:
            parts[VIEW] = self.view(parts[VIEW])
        return self.out_layout.join(parts)


class OnSpectrogram(nn.Module):
    """Apply `module` (SpecAugment, the frequency warp) to the spectrogram part of packed rows only."""

    def __init__(self, module: nn.Module, layout: Layout) -> None:
        super().__init__()
        self.module, self.layout = module, layout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        parts = self.layout.split(x)
        parts[SPECTROGRAM] = self.module(parts[SPECTROGRAM])
        return self.layout.join(parts)


def wrap(
    cfg: Any,
    layout: Layout,
    feature_shape: tuple[int, ...],
    spectrogram_stages: nn.Module,
    spec_augment: nn.Module | None,
    cnn: nn.Module,
    n_classes: int,
    train_rows: torch.Tensor | None,
) -> tuple[nn.Module, nn.Module | None, nn.Module]:
    """(front end, train-only spectrogram augmentation, network) over packed rows, around the CNN and the
    spectrogram pipeline that `ser.models.pipeline` built for the spectrogram alone (`feature_shape`: the
    spectrogram after its stages)."""
    from ser.data.normalize import FeatureNormalizer

    out_layout = layout.replace(SPECTROGRAM, feature_shape)
    view: nn.Module = nn.Identity()
    if layout.has(VIEW) and cfg.data.features.normalize != "speaker":
        view = FeatureNormalizer("train", layout.shape(VIEW))
        if train_rows is not None:
            view.fit(layout.split(train_rows)[VIEW])
    frontend = ViewsFrontend(layout, out_layout, spectrogram_stages, view)
    augment = None if spec_augment is None else OnSpectrogram(spec_augment, out_layout)
    return frontend, augment, MultiViewNet(cfg.model, out_layout, cnn, n_classes)
