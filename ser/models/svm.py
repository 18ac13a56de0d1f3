"""SVM baseline on fixed vectors (MFCC statistics or the 193-value handcrafted vector).

Not an nn.Module: the registry lists it as `svm` with `is_torch=False` so the training code branches once.
The pipeline standardises features (statistics from the training data only) before the SVC, since an RBF
kernel is meaningless on features whose scales differ by orders of magnitude.

Probabilities are the softmax of the one-vs-rest decision scores: they rank classes consistently with the
prediction (pred == argmax proba) and are deterministic, but they are not calibrated. (SVC's Platt scaling
is deprecated in scikit-learn 1.9 and costs five extra fits.)

Knobs read: svm_c (> 0), svm_kernel (linear | rbf | poly | sigmoid), svm_class_weight (none | balanced).
"""

from __future__ import annotations

from typing import Optional

import numpy as np
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from ser.config import CHOICES, ModelConfig
from ser.models.components.common import check_choice, fail

SVM_KERNELS = CHOICES["model.svm_kernel"]
CLASS_WEIGHTS = CHOICES["model.svm_class_weight"]


def check_svm_config(cfg: ModelConfig) -> None:
    """Raise ModelConfigError for knobs the SVC cannot take."""
    if not cfg.svm_c > 0:
        fail("svm_c", f"{cfg.svm_c} must be > 0")
    check_choice("svm_kernel", cfg.svm_kernel, SVM_KERNELS)
    check_choice("svm_class_weight", cfg.svm_class_weight, CLASS_WEIGHTS)


def _as_matrix(x: np.ndarray, name: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] == 0:
        raise ValueError(f"{name} must be a non-empty [n_samples, n_features] array; got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError(f"{name} holds NaN or infinite values")
    return x


def fit_svm(x_train: np.ndarray, y_train: np.ndarray, cfg: ModelConfig) -> Pipeline:
    """Fit StandardScaler -> SVC on [N, D] features and [N] integer labels."""
    check_svm_config(cfg)
    x = _as_matrix(x_train, "x_train")
    y = np.asarray(y_train)
    if y.shape != (x.shape[0],):
        raise ValueError(f"y_train must have shape ({x.shape[0]},) to match x_train; got {y.shape}")
    if np.unique(y).size < 2:
        raise ValueError("fit_svm needs at least 2 classes in y_train")
    svc = SVC(
        C=cfg.svm_c,
        kernel=cfg.svm_kernel,
        class_weight="balanced" if cfg.svm_class_weight == "balanced" else None,
        decision_function_shape="ovr",
    )
    return Pipeline([("scale", StandardScaler()), ("svc", svc)]).fit(x, y)


def predict_svm(
    model: Pipeline, x: np.ndarray, n_classes: Optional[int] = None
) -> tuple[np.ndarray, np.ndarray]:
    """(pred [N], proba [N, K]): proba columns follow `model.classes_`, or labels 0..n_classes-1 if given.

    With `n_classes`, classes absent from training get probability 0, so folds missing a class still
    give full-width outputs.
    """
    x = _as_matrix(x, "x")
    scores = np.asarray(model.decision_function(x), dtype=np.float64)
    if scores.ndim == 1:  # binary: one score, positive means classes_[1]
        scores = np.stack([-scores, scores], axis=1)
    scores -= scores.max(axis=1, keepdims=True)
    proba = np.exp(scores)
    proba /= proba.sum(axis=1, keepdims=True)
    classes = np.asarray(model.classes_)
    pred = classes[proba.argmax(axis=1)]
    if n_classes is not None:
        if not np.issubdtype(classes.dtype, np.integer) or classes.min() < 0 or classes.max() >= n_classes:
            raise ValueError(f"n_classes={n_classes} needs integer labels in [0, {n_classes}); got {classes}")
        full = np.zeros((x.shape[0], n_classes))
        full[:, classes] = proba
        proba = full
    return pred, proba
