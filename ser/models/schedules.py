"""Learning-rate schedules as pure multiplier functions plus one builder for Lightning.

The multipliers are pure functions of the optimizer step so their shape is unit-tested without a
Trainer; `build_scheduler` wraps them in a per-step LambdaLR (or a per-epoch ReduceLROnPlateau) and
returns the dict Lightning's `configure_optimizers` expects.
"""

from __future__ import annotations

import math
from typing import Any

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR, ReduceLROnPlateau

from ser.config import OptimConfig


def tristage_lambda(step: int, total: int, warmup_frac: float, hold_frac: float, final_scale: float) -> float:
    """LR multiplier after `step` optimizer steps out of `total`.

    Rises linearly to 1 over the first warmup_frac of the steps (starting at 1/warmup_steps, not 0, so
    the first update moves), holds 1 for hold_frac, then falls linearly to final_scale at `total`.
    """
    total = max(int(total), 1)
    warm = round(warmup_frac * total)
    hold = round(hold_frac * total)
    if step < warm:
        return (step + 1) / warm
    if step < warm + hold:
        return 1.0
    progress = min((step - warm - hold) / max(total - warm - hold, 1), 1.0)
    return 1.0 + (final_scale - 1.0) * progress


def cosine_lambda(step: int, total: int, final_scale: float) -> float:
    """LR multiplier: half a cosine from 1 at step 0 to final_scale at `total`, constant after."""
    progress = min(step / max(int(total), 1), 1.0)
    return final_scale + (1.0 - final_scale) * 0.5 * (1.0 + math.cos(math.pi * progress))


def build_scheduler(
    optimizer: Optimizer, cfg: OptimConfig, total_steps: float | None, monitor: str = "val/loss"
) -> dict[str, Any] | None:
    """Lightning lr_scheduler config for `cfg.schedule`, or None for a constant LR.

    `total_steps` (Trainer.estimated_stepping_batches) is needed by the per-step schedules only.
    """
    if cfg.schedule == "constant":
        return None
    if cfg.schedule == "plateau":
        plateau = ReduceLROnPlateau(
            optimizer, mode="min", factor=cfg.plateau_factor, patience=cfg.plateau_patience
        )
        return {"scheduler": plateau, "monitor": monitor, "interval": "epoch", "frequency": 1}
    if total_steps is None or not math.isfinite(total_steps) or total_steps < 1:
        raise ValueError(
            f"optim.schedule={cfg.schedule!r} needs a finite number of training steps "
            f"(got {total_steps}); set trainer.max_epochs"
        )
    total = int(total_steps)
    if cfg.schedule == "tristage":
        w, h, f = cfg.warmup_frac, cfg.hold_frac, cfg.final_lr_scale

        def multiplier(step: int) -> float:
            return tristage_lambda(step, total, w, h, f)
    else:
        f = cfg.final_lr_scale

        def multiplier(step: int) -> float:
            return cosine_lambda(step, total, f)

    return {"scheduler": LambdaLR(optimizer, multiplier), "interval": "step", "frequency": 1}
