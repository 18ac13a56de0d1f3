"""Optimisers for the classifier: Adam, AdamW or SGD, with weight decay on the weights only.

`optim.l2` (an explicit penalty in the loss, the earlier projects' "L2") and `optim.weight_decay` (the
optimiser's own decay: decoupled for AdamW) are separate knobs, so a sweep can compare them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from ser.config import CHOICES, ConfigError, OptimConfig
from ser.config.validate import check_optim_values

OPTIMIZERS = CHOICES["optim.optimizer"]


def as_optim_config(optim: OptimConfig | Mapping[str, Any] | DictConfig) -> OptimConfig:
    """Accept the dataclass, a DictConfig or a plain dict (checkpoint hparams); reject unknown keys and
    values outside the config's ranges (ConfigError naming the key)."""
    if isinstance(optim, OptimConfig):
        cfg = optim
    else:
        data = OmegaConf.to_container(optim, resolve=True) if isinstance(optim, DictConfig) else dict(optim)
        known = {f.name for f in dataclasses.fields(OptimConfig)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown optim key(s) {unknown}; known: {sorted(known)}")
        cfg = OptimConfig(**data)
    check_optim_values(cfg)
    return cfg


def split_decay_params(module: nn.Module) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """(weights, others): matrices and kernels (ndim >= 2) get L2 / weight decay; biases and
    normalisation scales (ndim 1) do not, since shrinking them only shifts or rescales activations."""
    weights, others = [], []
    for p in module.parameters():
        if p.requires_grad:
            (weights if p.ndim >= 2 else others).append(p)
    return weights, others


def lr_scales(module: nn.Module) -> dict[int, float]:
    """id(parameter) -> learning-rate multiplier, from every submodule that offers `param_lr_scales()`
    (a fine-tuned encoder's layer-wise decay); parameters not listed learn at optim.lr."""
    scales: dict[int, float] = {}
    for sub in module.modules():
        offer = getattr(sub, "param_lr_scales", None)
        if callable(offer):
            scales.update((id(p), float(s)) for p, s in offer())
    return scales


def param_groups(module: nn.Module, cfg: OptimConfig) -> list[dict[str, Any]]:
    """Weights (with weight decay) and the rest (without), each split by learning-rate scale; the groups
    at optim.lr come first, so group 0's lr is the one logged."""
    weights, others = split_decay_params(module)
    scales = lr_scales(module)
    groups: dict[tuple[float, bool], list[nn.Parameter]] = {(1.0, True): [], (1.0, False): []}
    for decay, params in ((True, weights), (False, others)):
        for p in params:
            groups.setdefault((scales.get(id(p), 1.0), decay), []).append(p)
    order = sorted(groups, key=lambda k: (k[0] != 1.0, -k[0], not k[1]))
    return [
        {"params": groups[k], "weight_decay": cfg.weight_decay if k[1] else 0.0, "lr": cfg.lr * k[0]}
        for k in order
    ]


def build_optimizer(module: nn.Module, cfg: OptimConfig) -> torch.optim.Optimizer:
    """Adam, AdamW or SGD with `weight_decay` on the weights only (parameter groups by decay and lr scale).

    For adamw the decay is decoupled (Loshchilov & Hutter); for adam and sgd it is the optimizer's
    classic coupled decay (added to the gradient). `optim.l2` is a separate, explicit loss term.
    """
    groups = param_groups(module, cfg)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2))
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2))
    return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=False)
