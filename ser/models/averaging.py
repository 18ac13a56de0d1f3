"""Exponential moving average (EMA) of the weights, for validation, model selection and the checkpoint.

On a small corpus the validation UA of one epoch's weights swings by several points from epoch to epoch
(RAVDESS dev, 2 validation actors: +-10), so picking the best epoch partly picks noise. An average of
the weights over about the last 1 / (1 - decay) updates (50 at 0.98) moves smoothly and usually
generalises better. Lightning's `EMAWeightAveraging` does the bookkeeping: it swaps the averaged weights
in for every validation epoch and writes them as the checkpoint's `state_dict`, so `ser evaluate` and
`ser predict` use them as well.
"""

from __future__ import annotations

from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback, EMAWeightAveraging


class WeightEMA(EMAWeightAveraging):
    """`EMAWeightAveraging` (updated after every optimizer step, buffers included) that tests what it saved.

    Lightning's callback, on loading a checkpoint, puts the *raw* training weights back into the module,
    which is what resuming needs; `trainer.test(ckpt_path=best)` after fit would then score the raw
    weights, not the averaged ones that were validated and selected. Outside fit the checkpoint's
    `state_dict` (the average) is what the module should hold, so the reload is skipped there.
    """

    def __init__(self, decay: float) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"EMA decay {decay} must be in (0, 1)")
        super().__init__(decay=decay)

    def on_load_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        if trainer.state.fn == "fit":
            super().on_load_checkpoint(trainer, pl_module, checkpoint)


def weight_averaging(ema_decay: float) -> list[Callback]:
    """The callbacks that `optim.ema_decay` asks for: none when it is 0."""
    return [WeightEMA(ema_decay)] if ema_decay > 0 else []
