"""Horizontal fusion (HFTA, Wang et al. MLSys 2021): K networks of the same architecture run as one.

The K networks stay ordinary modules (each fold's or seed's own `EmotionClassifier.net`, with its own
parameters, buffers, optimizer and checkpoint); a fused forward reads their weights at call time and runs
each layer once for all K:

- a convolution of K models is one grouped convolution (weights concatenated on the output channels,
  `groups = K`), a linear layer one batched matmul, a batch norm one batch norm over K x C channels
  (running statistics written back to each model's own buffers);
- activations, pools and adaptive pools act per channel, so they run unchanged on K x C channels;
- dropout draws each model's mask from that model's own generator, with the shape that model alone
  would draw, so a fused step consumes every generator exactly as K separate steps would.

Activations travel model-major along dimension 1: [B, K*C, ...] with model k in channels k*C..(k+1)*C
(a flattened [B, K*D] keeps model k's D features contiguous, so `Flatten` and `Unflatten` need no
permutation). All K models must see a batch of the same size B: the caller groups models by batch size.
Gradients flow back through the concatenations into each model's own parameters.

Families built only from the layers below fuse (emotion_detector, emotion_detector2, sentan,
feature_mlp); cnn_lstm fuses its conv stack and runs the K LSTMs one after another; anything else
raises `NotFusable` with the reason (e.g. a compiled net, dropout between stacked LSTM layers).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ser.models.components.cnn_lstm import CnnLstm
from ser.models.components.emotion_detector import ConvStack, EmotionDetector, TimeStatsPooling
from ser.models.components.emotion_detector2 import EmotionDetector2
from ser.models.components.feature_mlp import FeatureMLP
from ser.models.components.sentan import SentAn
from ser.models.dropout import SeededDropout

FusedFn = Callable[[Sequence[nn.Module], torch.Tensor], torch.Tensor]


class NotFusable(ValueError):
    """The network contains a layer the fused forward does not implement; the message names it."""


# ------------------------------------------------------------------------------------- leaf layers
# Devices where K convolutions run as one grouped convolution. On CPU, oneDNN's grouped kernels measured
# 20-25% slower than K dense ones (forward + backward, 1 thread), so there each model's slice of channels
# is convolved on its own: the same arithmetic as K separate runs, still one network call.
GROUPED_CONV_DEVICES = ("cuda", "mps")


def _conv(mods: Sequence[nn.Module], x: torch.Tensor) -> torch.Tensor:
    """K Conv1d/Conv2d as one grouped convolution over [B, K*C_in, ...]."""
    m = mods[0]
    conv = F.conv2d if isinstance(m, nn.Conv2d) else F.conv1d
    if x.device.type not in GROUPED_CONV_DEVICES:
        parts = x.chunk(len(mods), dim=1)
        return torch.cat(
            [
                conv(p, c.weight, c.bias, c.stride, c.padding, c.dilation, c.groups)
                for p, c in zip(parts, mods)
            ],
            dim=1,
        )
    weight = torch.cat([c.weight for c in mods])
    bias = None if m.bias is None else torch.cat([c.bias for c in mods])
    return conv(x, weight, bias, m.stride, m.padding, m.dilation, m.groups * len(mods))


def _linear(mods: Sequence[nn.Module], x: torch.Tensor) -> torch.Tensor:
    """K Linear layers as one batched matmul: [B, K*in] -> [B, K*out]."""
    k, b = len(mods), x.shape[0]
    xs = x.reshape(b, k, -1).transpose(0, 1)  # [K, B, in]
    weight = torch.stack([m.weight for m in mods]).transpose(1, 2)  # [K, in, out]
    if mods[0].bias is None:
        out = torch.bmm(xs, weight)
    else:
        out = torch.baddbmm(torch.stack([m.bias for m in mods]).unsqueeze(1), xs, weight)
    return out.transpose(0, 1).reshape(b, -1)


def _batch_norm(mods: Sequence[nn.Module], x: torch.Tensor) -> torch.Tensor:
    """K BatchNorms as one over K*C channels, following `_BatchNorm.forward` step by step; the running
    statistics are concatenated, updated by the one call and copied back into each model's buffers."""
    m = mods[0]
    factor = 0.0 if m.momentum is None else m.momentum
    tracking = m.training and m.track_running_stats
    if tracking and m.num_batches_tracked is not None:
        for bn in mods:
            bn.num_batches_tracked.add_(1)
        factor = 1.0 / float(m.num_batches_tracked) if m.momentum is None else m.momentum
    has_stats = m.running_mean is not None
    bn_training = m.training or not has_stats
    mean = torch.cat([bn.running_mean for bn in mods]) if has_stats else None
    var = torch.cat([bn.running_var for bn in mods]) if has_stats else None
    use_stats = not m.training or m.track_running_stats
    weight = torch.cat([bn.weight for bn in mods]) if m.affine else None
    bias = torch.cat([bn.bias for bn in mods]) if m.affine else None
    out = F.batch_norm(
        x,
        mean if use_stats else None,
        var if use_stats else None,
        weight,
        bias,
        bn_training,
        factor,
        m.eps,
    )
    if tracking and has_stats:
        with torch.no_grad():
            for bn, new_mean, new_var in zip(mods, mean.chunk(len(mods)), var.chunk(len(mods))):
                bn.running_mean.copy_(new_mean)
                bn.running_var.copy_(new_var)
    return out


def _dropout(mods: Sequence[nn.Module], x: torch.Tensor) -> torch.Tensor:
    """Each model's mask from its own generator, drawn with the shape it would draw alone."""
    m = mods[0]
    if not m.training or m.p == 0.0:
        return x
    b, per = x.shape[0], x.shape[1] // len(mods)
    rest = [1] * (x.dim() - 2) if m.channelwise else list(x.shape[2:])
    draws = [torch.rand((b, per, *rest), generator=d.generator, device=d.generator.device) for d in mods]
    keep = torch.cat(draws, dim=1).to(x.device) >= m.p
    return x * keep.to(x.dtype) / (1.0 - m.p)


def _flatten(mods: Sequence[nn.Module], x: torch.Tensor) -> torch.Tensor:
    m = mods[0]
    if m.start_dim != 1 or m.end_dim != -1:
        raise NotFusable(f"Flatten({m.start_dim}, {m.end_dim}) mixes the models' channels")
    return m(x)  # model-major channels flatten to model-major features


def _unflatten(mods: Sequence[nn.Module], x: torch.Tensor) -> torch.Tensor:
    m = mods[0]
    sizes = tuple(m.unflattened_size)
    return x.reshape(x.shape[0], len(mods) * sizes[0], *sizes[1:])


def _per_channel(mods: Sequence[nn.Module], x: torch.Tensor) -> torch.Tensor:
    """Parameter-free layers that act on each channel alone: the same module serves all K models."""
    return mods[0](x)


def _sequential(mods: Sequence[nn.Module], x: torch.Tensor) -> torch.Tensor:
    for i in range(len(mods[0])):
        x = fused_call([m[i] for m in mods], x)
    return x


# ------------------------------------------------------------------------- the families' containers
def _children(mods: Sequence[nn.Module], name: str) -> list[nn.Module]:
    return [getattr(m, name) for m in mods]


def _conv_stack(mods: Sequence[nn.Module], x: torch.Tensor) -> torch.Tensor:
    return fused_call(_children(mods, "blocks"), x)


def _emotion_detector(mods: Sequence[nn.Module], x: torch.Tensor) -> torch.Tensor:
    x = fused_call(_children(mods, "features"), x)
    x = fused_call(_children(mods, "pool"), x)
    return fused_call(_children(mods, "head"), x)


def _emotion_detector2(mods: Sequence[nn.Module], x: torch.Tensor) -> torch.Tensor:
    x = fused_call(_children(mods, "features"), x)
    x = torch.flatten(mods[0].pool(x), 1)  # global average pool: per channel
    return fused_call(_children(mods, "head"), x)


def _feature_mlp(mods: Sequence[nn.Module], x: torch.Tensor) -> torch.Tensor:
    return fused_call(_children(mods, "mlp"), fused_call(_children(mods, "front"), x))


def _cnn_lstm(mods: Sequence[nn.Module], x: torch.Tensor) -> torch.Tensor:
    """The conv stacks fused; each model's LSTM, pooling and head on its own slice of the conv map. K LSTMs
    with different weights have no fused form: one cuDNN call cannot hold them, and a block-diagonal
    LSTM would do K times the work."""
    z = fused_call(_children(mods, "features"), x)
    return torch.cat([m.classify(part) for m, part in zip(mods, z.chunk(len(mods), dim=1))], dim=1)


def _time_stats(mods: Sequence[nn.Module], x: torch.Tensor) -> torch.Tensor:
    """TimeStatsPooling of K models: [B, K*C, H, W] -> [B, K * 2*C*h] (each model's mean, then sd)."""
    m, k = mods[0], len(mods)
    frames = torch.flatten(m.freq_pool(x), 1, 2)  # [B, K*C*h, W], model-major
    b, _, w = frames.shape
    if m.attention is None:
        weights = torch.full_like(frames[:, :1], 1.0 / w).unsqueeze(1)  # [B, 1, 1, W]
    else:
        scores = fused_call(_children(mods, "attention"), frames)  # [B, K, W]
        weights = torch.softmax(scores, dim=-1).unsqueeze(2)  # [B, K, 1, W]
    per_model = frames.reshape(b, k, -1, w)
    mean = (per_model * weights).sum(dim=-1)
    var = ((per_model - mean.unsqueeze(-1)).square() * weights).sum(dim=-1)
    return torch.cat([mean, var.clamp_min(1e-6).sqrt()], dim=2).reshape(b, -1)


# Exact types: a subclass with another forward must be added here, not fused by its parent's rule.
FUSED: dict[type[nn.Module], FusedFn] = {
    nn.Conv1d: _conv,
    nn.Conv2d: _conv,
    nn.Linear: _linear,
    nn.BatchNorm1d: _batch_norm,
    nn.BatchNorm2d: _batch_norm,
    SeededDropout: _dropout,
    nn.Flatten: _flatten,
    nn.Unflatten: _unflatten,
    nn.Sequential: _sequential,
    nn.Identity: _per_channel,
    nn.ReLU: _per_channel,
    nn.ELU: _per_channel,
    nn.GELU: _per_channel,
    nn.LeakyReLU: _per_channel,
    nn.Tanh: _per_channel,
    nn.MaxPool1d: _per_channel,
    nn.MaxPool2d: _per_channel,
    nn.AvgPool1d: _per_channel,
    nn.AvgPool2d: _per_channel,
    nn.AdaptiveAvgPool1d: _per_channel,
    nn.AdaptiveAvgPool2d: _per_channel,
    ConvStack: _conv_stack,
    EmotionDetector: _emotion_detector,
    SentAn: _emotion_detector,
    EmotionDetector2: _emotion_detector2,
    FeatureMLP: _feature_mlp,
    TimeStatsPooling: _time_stats,
    CnnLstm: _cnn_lstm,
}
# Children a fused form runs per model (their own modules, unfused): not checked for a fused form.
PER_MODEL = {CnnLstm: ("lstm", "attention", "head")}


def fused_call(mods: Sequence[nn.Module], x: torch.Tensor) -> torch.Tensor:
    """Run K same-architecture modules on the model-major input x [B, K*C, ...] as one."""
    fn = FUSED.get(type(mods[0]))
    if fn is None:
        raise NotFusable(f"no fused form for {type(mods[0]).__name__}")
    return fn(mods, x)


def check_fusable(nets: Sequence[nn.Module]) -> None:
    """NotFusable (naming the layer) unless every module of every net has a fused form and the nets share
    one architecture: the same module types and parameter/buffer shapes in the same places."""
    if not nets:
        raise NotFusable("no networks to fuse")
    reference = nets[0]
    missing = [(name, m) for name, m in _fused_modules(reference) if type(m) not in FUSED]
    if missing:  # name a layer (e.g. the LSTM) rather than the family's container around it
        name, module = next(((n, m) for n, m in missing if not list(m.children())), missing[0])
        where = f" at '{name}'" if name else ""
        raise NotFusable(f"{type(module).__name__}{where} has no fused form")
    shapes = [
        [(n, type(m)) for n, m in net.named_modules()]
        + [(n, tuple(t.shape)) for n, t in (*net.named_parameters(), *net.named_buffers())]
        for net in nets
    ]
    for k, other in enumerate(shapes[1:], start=1):
        if other != shapes[0]:
            raise NotFusable(f"network {k} differs in architecture from network 0")
    _check_modes(reference)


def _fused_modules(net: nn.Module, prefix: str = "") -> list[tuple[str, nn.Module]]:
    """(name, module) of `net` and every module below it that runs fused (not those run per model)."""
    out = [(prefix, net)]
    skip = PER_MODEL.get(type(net), ())
    for name, child in net.named_children():
        if name not in skip:
            out += _fused_modules(child, f"{prefix}.{name}" if prefix else name)
    return out


def _check_modes(net: nn.Module) -> None:
    for name, module in net.named_modules():
        if isinstance(module, (nn.Conv1d, nn.Conv2d)) and module.padding_mode != "zeros":
            raise NotFusable(f"'{name}': padding_mode {module.padding_mode!r} (only zeros fuse)")
        if isinstance(module, nn.LSTM) and module.num_layers > 1 and module.dropout > 0:
            raise NotFusable(
                f"'{name}': dropout between LSTM layers draws from torch's global generator, so K models "
                "in one process cannot each draw what they would alone"
            )


def fused_forward(nets: Sequence[nn.Module], inputs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Logits of each net on its own input (all of one batch size): [B, ...] each -> [B, n_classes] each."""
    if len({x.shape for x in inputs}) != 1:
        raise ValueError(f"fused inputs must share one shape, got {[tuple(x.shape) for x in inputs]}")
    if len(nets) == 1:
        return [nets[0](inputs[0])]
    b = inputs[0].shape[0]
    logits = fused_call(nets, torch.cat(inputs, dim=1))
    return list(logits.reshape(b, len(nets), -1).unbind(dim=1))
