"""Model zoo: every torch family builds, runs forward and backward over its knobs, and rejects bad knobs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf
from torch import nn

from ser.config import ConfigError, ModelConfig
from ser.models.registry import (
    MODELS,
    ModelConfigError,
    available_models,
    build_model,
    count_parameters,
    input_kind,
)
from ser.models.svm import fit_svm, predict_svm

torch.set_num_threads(1)

SPEC = (1, 64, 301)  # 64 mels x 3 s at hop 160
VEC = (193,)
N_CLASSES = 8
SMALL = dict(channels=8, max_channels=32, hidden=16, lstm_hidden=16)  # same shapes, fewer FLOPs
# families built on a plain input; the pretrained-encoder family (ssl) has tests/test_ssl*.py
TORCH_MODELS = [name for name, spec in MODELS.items() if spec.is_torch and spec.input_kind != "pretrained"]
SPECTROGRAM_MODELS = [name for name in TORCH_MODELS if MODELS[name].input_kind == "spectrogram"]


def shape_for(name: str) -> tuple[int, ...]:
    return SPEC if input_kind(name) == "spectrogram" else VEC


def batch(shape: tuple[int, ...], n: int = 2, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, *shape, generator=torch.Generator().manual_seed(seed))


def run_train_step(model: nn.Module, shape: tuple[int, ...], n_classes: int = N_CLASSES) -> torch.Tensor:
    """Forward + backward in train mode; every parameter must receive a finite gradient."""
    model.train()
    x = batch(shape)
    logits = model(x)
    assert logits.shape == (x.shape[0], n_classes)
    assert torch.isfinite(logits).all()
    F.cross_entropy(logits, torch.arange(x.shape[0]) % n_classes).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, f"{name} got no gradient"
        assert torch.isfinite(p.grad).all(), f"{name} has a non-finite gradient"
    assert any(p.grad.abs().sum() > 0 for p in model.parameters())
    return logits


def modules_of(model: nn.Module, kind: type[nn.Module]) -> list[nn.Module]:
    return [m for m in model.modules() if type(m) is kind]


# --- every family at its defaults ---------------------------------------------------------------------


@pytest.mark.parametrize("name", TORCH_MODELS)
def test_defaults_train_and_eval(name: str) -> None:
    shape = shape_for(name)
    model = build_model(ModelConfig(name=name), shape, N_CLASSES)
    run_train_step(model, shape)
    assert count_parameters(model) == sum(p.numel() for p in model.parameters())
    assert name.replace("_", "") in model.describe().lower().replace("_", "")
    model.eval()
    x = batch(shape, n=3, seed=1)
    with torch.no_grad():
        first, second = model(x), model(x)
        alone = model(x[:1])
    assert torch.equal(first, second)
    assert torch.allclose(first[:1], alone, atol=1e-5)  # eval uses running stats, not the batch


@pytest.mark.parametrize("name", TORCH_MODELS)
def test_builds_from_omegaconf(name: str) -> None:
    cfg = OmegaConf.structured(ModelConfig(name=name, **SMALL))
    model = build_model(cfg, list(shape_for(name)), 4)
    assert model(batch(shape_for(name))).shape == (2, 4)


# --- emotion_detector ---------------------------------------------------------------------------------


@pytest.mark.parametrize("depth", range(1, 11))
def test_emotion_detector_depths(depth: int) -> None:
    model = build_model(ModelConfig(depth=depth, **SMALL), SPEC, N_CLASSES)
    assert len(model.features.blocks) == depth
    assert min(model.features.out_shape) >= 1
    run_train_step(model, SPEC)


@pytest.mark.parametrize("kernel,width", [(3, None), (5, None), (7, None), (3, 9), (9, 3)])
def test_emotion_detector_kernels(kernel: int, width: int | None) -> None:
    model = build_model(ModelConfig(kernel_size=kernel, kernel_width=width, **SMALL), SPEC, N_CLASSES)
    assert modules_of(model, nn.Conv2d)[0].kernel_size == (kernel, width or kernel)
    run_train_step(model, SPEC)


@pytest.mark.parametrize("batch_norm", [True, False])
@pytest.mark.parametrize("pool", ["max", "avg"])
def test_emotion_detector_norm_and_pool(batch_norm: bool, pool: str) -> None:
    model = build_model(ModelConfig(batch_norm=batch_norm, pool=pool, **SMALL), SPEC, N_CLASSES)
    assert len(modules_of(model, nn.BatchNorm2d)) == (3 if batch_norm else 0)
    pool_kind = nn.MaxPool2d if pool == "max" else nn.AvgPool2d
    assert len(modules_of(model, pool_kind)) == 3
    run_train_step(model, SPEC)


@pytest.mark.parametrize("growth,expected", [(1.0, [8] * 6), (2.0, [8, 16, 32, 64, 64, 64])])
def test_emotion_detector_channels(growth: float, expected: list[int]) -> None:
    cfg = ModelConfig(depth=6, channels=8, channel_growth=growth, max_channels=64, hidden=16)
    model = build_model(cfg, SPEC, N_CLASSES)
    assert [c.out_channels for c in modules_of(model, nn.Conv2d)] == expected
    run_train_step(model, SPEC)


def test_emotion_detector_two_layer_head() -> None:
    model = build_model(ModelConfig(classifier_layers=2, **SMALL), SPEC, N_CLASSES)
    assert [m.out_features for m in modules_of(model.head, nn.Linear)] == [16, N_CLASSES]
    run_train_step(model, SPEC)


# --- dropout placement --------------------------------------------------------------------------------

FEATURE_DROPOUT = {"emotion_detector": nn.Dropout2d, "emotion_detector2": nn.Dropout2d}
FEATURE_DROPOUT |= {"sentan": nn.Dropout2d, "cnn_lstm": nn.Dropout2d, "feature_mlp": nn.Dropout1d}


@pytest.mark.parametrize("name", TORCH_MODELS)
@pytest.mark.parametrize("placement", ["none", "conv", "classifier", "both"])
def test_dropout_placement(name: str, placement: str) -> None:
    cfg = ModelConfig(name=name, dropout=placement, depth=2, conv1d=True, lstm_layers=2, **SMALL)
    model = build_model(cfg, shape_for(name), N_CLASSES)
    feature_drop = modules_of(model, FEATURE_DROPOUT[name])
    head_drop = modules_of(model, nn.Dropout)
    assert len(feature_drop) == (2 if placement in ("conv", "both") else 0)
    assert bool(head_drop) == (placement in ("classifier", "both"))
    assert all(d.p == cfg.conv_dropout for d in feature_drop)
    assert all(d.p == cfg.classifier_dropout for d in head_drop)
    if name == "cnn_lstm":
        assert model.lstm.dropout == (cfg.conv_dropout if placement in ("conv", "both") else 0.0)
    run_train_step(model, shape_for(name))


def test_dropout_is_active_only_in_training() -> None:
    cfg = ModelConfig(dropout="both", conv_dropout=0.5, classifier_dropout=0.5, **SMALL)
    model = build_model(cfg, SPEC, N_CLASSES)
    x = batch(SPEC)
    model.train()
    assert not torch.equal(model(x), model(x))
    model.eval()
    assert torch.equal(model(x), model(x))


# --- the other families -------------------------------------------------------------------------------


def test_emotion_detector2_forces_batch_norm_and_two_layer_head() -> None:
    model = build_model(ModelConfig(name="emotion_detector2", batch_norm=False, depth=4, **SMALL), SPEC, 5)
    assert len(modules_of(model, nn.BatchNorm2d)) == 4
    assert [m.out_features for m in modules_of(model.head, nn.Linear)] == [16, 5]
    assert model.head[0 if not isinstance(model.head[0], nn.Dropout) else 1].in_features == 32
    run_train_step(model, SPEC, n_classes=5)


@pytest.mark.parametrize("depth", [1, 2, 3])
@pytest.mark.parametrize("layers", [1, 2])
def test_sentan(depth: int, layers: int) -> None:
    model = build_model(ModelConfig(name="sentan", depth=depth, classifier_layers=layers, **SMALL), SPEC, 8)
    assert len(modules_of(model, nn.Conv2d)) == depth
    assert len(modules_of(model.head, nn.Linear)) == layers
    run_train_step(model, SPEC)


@pytest.mark.parametrize("pooling", ["last", "mean", "attention"])
@pytest.mark.parametrize("bidirectional", [True, False])
def test_cnn_lstm(pooling: str, bidirectional: bool) -> None:
    cfg = ModelConfig(name="cnn_lstm", lstm_pooling=pooling, bidirectional=bidirectional, **SMALL)
    model = build_model(cfg, SPEC, N_CLASSES)
    _, freq, frames = model.features.out_shape
    assert (freq, frames) == (8, 301)  # frequency pooled three times, time kept
    assert (model.attention is not None) == (pooling == "attention")
    assert model.lstm.bidirectional == bidirectional
    run_train_step(model, SPEC)


def test_cnn_lstm_last_pooling_reads_the_final_frame() -> None:
    """With a unidirectional LSTM and 'last' pooling, only the last frame's state drives the output."""
    cfg = ModelConfig(name="cnn_lstm", lstm_pooling="last", bidirectional=False, kernel_size=1, **SMALL)
    model = build_model(cfg, (1, 16, 20), 3).eval()
    x = batch((1, 16, 20))
    changed = x.clone()
    changed[..., -1] += 1.0
    with torch.no_grad():
        assert not torch.allclose(model(x), model(changed))


@pytest.mark.parametrize("conv1d", [False, True])
@pytest.mark.parametrize("batch_norm", [False, True])
@pytest.mark.parametrize("layers", [1, 3])
def test_feature_mlp(conv1d: bool, batch_norm: bool, layers: int) -> None:
    cfg = ModelConfig(name="feature_mlp", conv1d=conv1d, batch_norm=batch_norm, classifier_layers=layers)
    model = build_model(cfg, VEC, N_CLASSES)
    assert bool(modules_of(model, nn.Conv1d)) == conv1d
    assert len(modules_of(model.mlp, nn.Linear)) == layers + 1
    assert len(modules_of(model.mlp, nn.BatchNorm1d)) == (layers if batch_norm else 0)
    run_train_step(model, VEC)


# --- registry and errors -------------------------------------------------------------------------------


def test_registry_lists_every_family() -> None:
    assert set(available_models()) == {
        "emotion_detector",
        "emotion_detector2",
        "sentan",
        "cnn_lstm",
        "feature_mlp",
        "svm",
        "ssl",
    }
    assert input_kind("ssl") == "pretrained"
    assert input_kind("cnn_lstm") == "spectrogram" and input_kind("feature_mlp") == "vector"
    assert MODELS["svm"].is_torch is False and input_kind("svm") == "vector"
    assert issubclass(ModelConfigError, ValueError) and issubclass(ModelConfigError, ConfigError)


def test_count_parameters_counts_trainable_only() -> None:
    model = build_model(ModelConfig(name="feature_mlp", hidden=10), (20,), 3)
    assert count_parameters(model) == (20 * 10 + 10 * 2) + (10 * 3 + 3)  # Linear (no bias: BN) + BN + out
    model.mlp[-1].weight.requires_grad_(False)
    assert count_parameters(model) == 20 * 10 + 10 * 2 + 3


def test_unknown_model_names_it_and_lists_the_others() -> None:
    with pytest.raises(ModelConfigError) as err:
        build_model(ModelConfig(name="resnet9000"), SPEC, 8)
    assert "resnet9000" in str(err.value) and "cnn_lstm" in str(err.value) and "model.name" in str(err.value)
    with pytest.raises(ModelConfigError, match="resnet9000"):
        input_kind("resnet9000")


def test_svm_is_not_built_as_torch() -> None:
    with pytest.raises(ModelConfigError, match="fit_svm"):
        build_model(ModelConfig(name="svm"), VEC, 8)


BAD_KNOBS = [
    ("emotion_detector", (1, 4, 4), dict(kernel_size=9), "model.kernel_size"),
    ("emotion_detector", SPEC, dict(kernel_size=65, kernel_width=3), "model.kernel_size"),
    ("sentan", (1, 64, 8), dict(kernel_size=3, kernel_width=9), "model.kernel_width"),
    ("cnn_lstm", (1, 8, 100), dict(kernel_size=9), "model.kernel_size"),
    ("feature_mlp", (5,), dict(conv1d=True, kernel_size=7), "model.kernel_size"),
    ("emotion_detector", SPEC, dict(kernel_size=0), "model.kernel_size"),
    ("emotion_detector", SPEC, dict(depth=0), "model.depth"),
    ("emotion_detector2", SPEC, dict(depth=-1), "model.depth"),
    ("sentan", SPEC, dict(depth=4), "model.depth"),
    ("cnn_lstm", SPEC, dict(depth=5), "model.depth"),
    ("emotion_detector", SPEC, dict(conv_dropout=1.0), "model.conv_dropout"),
    ("cnn_lstm", SPEC, dict(conv_dropout=-0.1), "model.conv_dropout"),
    ("feature_mlp", VEC, dict(classifier_dropout=1.5), "model.classifier_dropout"),
    ("emotion_detector", SPEC, dict(dropout="everywhere"), "model.dropout"),
    ("feature_mlp", VEC, dict(dropout="input"), "model.dropout"),
    ("emotion_detector", SPEC, dict(pool="median"), "model.pool"),
    ("feature_mlp", VEC, dict(conv1d=True, pool="median"), "model.pool"),
    ("sentan", SPEC, dict(activation="tanh"), "model.activation"),
    ("cnn_lstm", SPEC, dict(lstm_pooling="max"), "model.lstm_pooling"),
    ("cnn_lstm", SPEC, dict(lstm_layers=0), "model.lstm_layers"),
    ("emotion_detector", SPEC, dict(classifier_layers=3), "model.classifier_layers"),
    ("feature_mlp", VEC, dict(classifier_layers=0), "model.classifier_layers"),
    ("emotion_detector", SPEC, dict(channels=0), "model.channels"),
    ("emotion_detector", SPEC, dict(channel_growth=0.0), "model.channel_growth"),
    ("emotion_detector", VEC, {}, "spectrogram"),
    ("cnn_lstm", (64, 301), {}, "spectrogram"),
    ("feature_mlp", SPEC, {}, "vector"),
]


@pytest.mark.parametrize("name,shape,knobs,key", BAD_KNOBS)
def test_impossible_knobs_raise_naming_the_key(name: str, shape: tuple, knobs: dict, key: str) -> None:
    with pytest.raises(ModelConfigError, match=key.replace(".", r"\.")):
        build_model(ModelConfig(name=name, **knobs), shape, N_CLASSES)


def test_too_few_classes() -> None:
    with pytest.raises(ModelConfigError, match="n_classes"):
        build_model(ModelConfig(), SPEC, 1)


# --- svm -------------------------------------------------------------------------------------------


def blobs(n_per: int, centers: list[list[float]], seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = np.concatenate([rng.normal(c, 0.3, size=(n_per, len(c))) for c in centers])
    return x, np.repeat(np.arange(len(centers)), n_per)


@pytest.mark.parametrize("kernel", ["rbf", "linear"])
@pytest.mark.parametrize("weight", ["none", "balanced"])
def test_svm_separates_toy_blobs(kernel: str, weight: str) -> None:
    centers = [[0.0, 0.0, 0.0], [5.0, 0.0, 100.0], [0.0, 5.0, -100.0]]  # third axis: needs scaling
    x, y = blobs(15, centers)
    model = fit_svm(x, y, ModelConfig(name="svm", svm_kernel=kernel, svm_class_weight=weight))
    x_test, y_test = blobs(10, centers, seed=1)
    pred, proba = predict_svm(model, x_test)
    assert np.array_equal(pred, y_test)
    assert proba.shape == (30, 3)
    assert np.allclose(proba.sum(axis=1), 1.0)
    assert np.array_equal(proba.argmax(axis=1), pred)


def test_svm_binary_and_missing_class_widths() -> None:
    x, y = blobs(10, [[0.0, 0.0], [4.0, 4.0]])
    model = fit_svm(x, y * 2, ModelConfig(name="svm"))  # labels 0 and 2: class 1 absent from training
    pred, proba = predict_svm(model, x, n_classes=3)
    assert np.array_equal(pred, y * 2)
    assert proba.shape == (20, 3) and np.all(proba[:, 1] == 0)
    assert np.array_equal(proba.argmax(axis=1), pred)


@pytest.mark.parametrize(
    "knobs,key",
    [
        (dict(svm_c=0.0), "model.svm_c"),
        (dict(svm_kernel="cubic"), "model.svm_kernel"),
        (dict(svm_class_weight="inverse"), "model.svm_class_weight"),
    ],
)
def test_svm_bad_knobs(knobs: dict, key: str) -> None:
    x, y = blobs(5, [[0.0], [3.0]])
    with pytest.raises(ModelConfigError, match=key.replace(".", r"\.")):
        fit_svm(x, y, ModelConfig(name="svm", **knobs))


def test_svm_bad_data() -> None:
    with pytest.raises(ValueError, match="2 classes"):
        fit_svm(np.zeros((4, 2)), np.zeros(4, dtype=int), ModelConfig(name="svm"))
    with pytest.raises(ValueError, match="y_train"):
        fit_svm(np.zeros((4, 2)), np.zeros(3, dtype=int), ModelConfig(name="svm"))


@pytest.mark.parametrize("pooling", ["stats", "attention"])
def test_time_pooling_ignores_where_in_the_clip_a_cue_is(pooling: str) -> None:
    cfg = ModelConfig(name="emotion_detector", time_pooling=pooling, **SMALL)
    model = build_model(cfg, SPEC, N_CLASSES)
    run_train_step(model, SPEC)
    model.eval()
    conv_map = torch.randn(2, 32, 8, 37, generator=torch.Generator().manual_seed(0))
    shuffled = conv_map[..., torch.randperm(37, generator=torch.Generator().manual_seed(1))]
    assert model.pool(conv_map).shape == (2, 2 * 32 * 4)
    torch.testing.assert_close(model.pool(conv_map), model.pool(shuffled))
    assert "pooling over time" in model.describe()


def test_grid_pooling_keeps_time_position_and_bad_pooling_is_named() -> None:
    model = build_model(ModelConfig(name="emotion_detector", **SMALL), SPEC, N_CLASSES).eval()
    conv_map = torch.randn(1, 32, 8, 37, generator=torch.Generator().manual_seed(0))
    assert not torch.allclose(model.pool(conv_map), model.pool(conv_map.flip(-1)))
    with pytest.raises(ModelConfigError, match="model.time_pooling"):
        build_model(ModelConfig(name="emotion_detector", time_pooling="bogus"), SPEC, N_CLASSES)
