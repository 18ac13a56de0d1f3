"""One pass of a trained classifier over the rows of a split: class probabilities and penultimate-layer
embeddings per utterance (`ser.report.predictions`), after the split was scored by `trainer.test`.

The embedding is the input of the network's last `Linear` with one output per class, captured with a
forward pre-hook, so every model family yields one without knowing about it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from ser.data.prepared import PreparedData
from ser.report.predictions import Predictions


def penultimate_layer(net: nn.Module, n_classes: int) -> nn.Linear | None:
    """The last Linear layer mapping to `n_classes` outputs (the classifier), or None."""
    found = None
    for module in net.modules():
        if isinstance(module, nn.Linear) and module.out_features == n_classes:
            found = module
    return found


def _meta(prepared: PreparedData, rows: np.ndarray) -> dict[str, np.ndarray]:
    speakers = np.asarray([prepared.speakers[i] for i in rows], dtype=str)
    genders = np.asarray([prepared.genders.get(s) or "" for s in speakers], dtype=str)
    return {
        "ids": np.asarray([prepared.utterance_ids[i] for i in rows], dtype=str),
        "speakers": speakers,
        "genders": genders,
        "y": np.asarray(prepared.y[rows], dtype=np.int64),
    }


@torch.no_grad()
def collect_predictions(
    model, prepared: PreparedData, rows: Sequence[int], fold: int, batch_size: int = 64
) -> Predictions:
    """Probabilities and embeddings of `model` (an EmotionClassifier) for `rows` of the prepared array."""
    rows = np.asarray(rows, dtype=np.int64)
    weights = next(p for p in model.parameters() if p.is_floating_point())
    device, dtype = weights.device, weights.dtype  # 16-true / bf16-true runs hold half-precision weights
    head = penultimate_layer(model.net, model.n_classes)
    captured: list[torch.Tensor] = []
    hook = None
    if head is not None:
        hook = head.register_forward_pre_hook(
            lambda _module, args: captured.append(args[0].detach().float().flatten(1).cpu())
        )
    was_training = model.training
    model.eval()
    probs = []
    try:
        for start in range(0, len(rows), batch_size):
            idx = rows[start : start + batch_size]
            x = torch.from_numpy(np.asarray(prepared.x[idx], dtype=np.float32)).to(device, dtype)
            probs.append(torch.softmax(model(x).float(), dim=-1).cpu())
    finally:
        if hook is not None:
            hook.remove()
        model.train(was_training)
    n = len(rows)
    embeddings = torch.cat(captured).numpy() if captured and sum(len(c) for c in captured) == n else None
    return Predictions(
        labels=list(model.labels),
        probs=torch.cat(probs).numpy() if probs else np.zeros((0, model.n_classes), np.float32),
        embeddings=embeddings,
        fold=fold,
        **_meta(prepared, rows),
    )


def svm_predictions(
    probs: np.ndarray, labels: Sequence[str], prepared: PreparedData, rows: Sequence[int], fold: int
) -> Predictions:
    """The SVM baseline's rows: its softmax-of-decision-scores probabilities (not calibrated), no
    embeddings."""
    rows = np.asarray(rows, dtype=np.int64)
    return Predictions(
        labels=list(labels), probs=np.asarray(probs, np.float32), fold=fold, **_meta(prepared, rows)
    )
