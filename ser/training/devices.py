"""Which device a run trains on, and a GPU asked for where there is none, refused as a config error.
Torch only (no Lightning), so a sweep's driver can check and decide before its trials start."""

from __future__ import annotations

import torch
from omegaconf import DictConfig

from ser.config import ConfigError


def check_accelerator(accelerator: str) -> None:
    """A GPU asked for where none is visible is a config error, not a Lightning traceback."""
    if accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        raise ConfigError(
            f"invalid config key 'trainer.accelerator': {accelerator!r} but no CUDA GPU is visible to torch "
            f"(torch {torch.__version__}); use trainer.accelerator=auto or cpu"
        )
    if accelerator == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("invalid config key 'trainer.accelerator': 'mps' but no Apple GPU is available")


def resolve_device(cfg: DictConfig) -> torch.device:
    """The one device a fused run trains on, as Lightning's accelerator choice would pick it."""
    accelerator = str(cfg.trainer.accelerator)
    check_accelerator(accelerator)
    if accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available()):
        return torch.device("cuda", 0)
    if accelerator == "mps" or (accelerator == "auto" and torch.backends.mps.is_available()):
        return torch.device("mps")
    return torch.device("cpu")
