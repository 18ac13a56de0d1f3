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


def build_optimizer(module: nn.Module, cfg: OptimConfig) -> torch.optim.Optimizer:
    """Adam, AdamW or SGD with `weight_decay` on the weights only (two parameter groups).

    For adamw the decay is decoupled (Loshchilov & Hutter); for adam and sgd it is the optimizer's
    classic coupled decay (added to the gradient). `optim.l2` is a separate, explicit loss term.
    """
    weights, others = split_decay_params(module)
    groups = [
        {"params": weights, "weight_decay": cfg.weight_decay},
        {"params": others, "weight_decay": 0.0},
    ]
    if cfg.optimizer == "adam":
        return torch.optim.Adam(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2))
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2))
    return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=False)
