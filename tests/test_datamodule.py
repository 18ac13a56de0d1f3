"""DataModule and training pipeline: honest splits, train-only statistics, train-only augmentation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ser.data.datamodule import SERDataModule, TensorBatches
from ser.data.normalize import FeatureNormalizer
from ser.data.prepared import prepare_data
from ser.models.pipeline import build_classifier

ALL_AUGMENT = [
    "data.augment.specaugment_p=1.0",
    "data.augment.noise_p=1.0",
    "data.augment.shift_p=1.0",
    "data.augment.speed_p=1.0",
    "data.augment.pitch_p=1.0",
    "data.augment.mixup_alpha=0.4",
]


def _collect(loader) -> tuple[torch.Tensor, torch.Tensor]:
    xs, ys = zip(*list(loader))
    return torch.cat(xs), torch.cat(ys)


def _pipeline(cfg):
    prepared = prepare_data(cfg, progress=False)
    dm = SERDataModule(cfg, prepared, 0)
    model, _ = build_classifier(
        cfg, dm.row_shape, prepared.labels, prepared.kind, prepared.waveform_mode, train_rows=dm.train_rows()
    )
    return dm, model


def test_val_and_test_batches_identical_with_augmentation_on_and_off(tiny_cfg_factory) -> None:
    off_dm, off_model = _pipeline(tiny_cfg_factory())
    on_dm, on_model = _pipeline(tiny_cfg_factory(*ALL_AUGMENT))
    assert on_dm.prepared.waveform_mode and not off_dm.prepared.waveform_mode
    assert on_model.mixup is not None and on_model.mixup.alpha == 0.4 and off_model.mixup is None
    on_model.load_state_dict(off_model.state_dict(), strict=False)  # same network weights
    on_model.eval()
    off_model.eval()
    for split in ("val_dataloader", "test_dataloader"):
        x_off, y_off = _collect(getattr(off_dm, split)())
        x_on, y_on = _collect(getattr(on_dm, split)())
        assert torch.equal(y_off, y_on)
        with torch.no_grad():
            f_off = off_model.features(x_off, augment=True)  # augment is requested but eval mode forbids it
            f_on = on_model.features(x_on, augment=True)
        # the waveform path featurises on the fly with the same torch ops the cache used
        torch.testing.assert_close(f_on, f_off, rtol=1e-4, atol=1e-3)
    # whereas training batches do change when augmentation is on
    on_model.train()
    x_train, _ = next(iter(on_dm.train_dataloader()))
    with torch.no_grad():
        assert not torch.allclose(on_model.features(x_train, augment=True), on_model.features(x_train))


def test_splits_are_speaker_disjoint_and_cover_the_data(tiny_cfg_factory) -> None:
    cfg = tiny_cfg_factory()
    prepared = prepare_data(cfg, progress=False)
    for fold in range(len(prepared.folds)):
        dm = SERDataModule(cfg, prepared, fold)
        speakers = {
            name: {prepared.speakers[i] for i in idx}
            for name, idx in (("train", dm.train_idx), ("val", dm.val_idx), ("test", dm.test_idx))
        }
        assert not speakers["train"] & speakers["val"]
        assert not speakers["train"] & speakers["test"] and not speakers["val"] & speakers["test"]
        assert sum(dm.split_sizes().values()) == len(prepared.y)


def test_normalizer_statistics_come_from_the_train_rows_only(tiny_cfg_factory) -> None:
    cfg = tiny_cfg_factory("data.features.normalize=train")
    prepared = prepare_data(cfg, progress=False)
    dm = SERDataModule(cfg, prepared, 0)
    model, _ = build_classifier(
        cfg, dm.row_shape, prepared.labels, prepared.kind, False, train_rows=dm.train_rows()
    )
    normalizer = model.frontend[-1]
    train = torch.from_numpy(np.array(prepared.x[np.sort(dm.train_idx)]))
    everything = torch.from_numpy(np.array(prepared.x))
    torch.testing.assert_close(
        normalizer.mean.squeeze(), train.mean(dim=(0, 3)).squeeze(), rtol=1e-4, atol=1e-4
    )
    assert not torch.allclose(normalizer.mean.squeeze(), everything.mean(dim=(0, 3)).squeeze(), atol=1e-4)


def test_feature_normalizer_modes() -> None:
    rng = np.random.default_rng(0)
    train = torch.from_numpy(rng.normal(0.0, 1.0, size=(20, 1, 6, 30)).astype(np.float32))
    train[:, :, 2] += 10.0
    test = torch.from_numpy(rng.normal(50.0, 9.0, size=(5, 1, 6, 30)).astype(np.float32))
    norm = FeatureNormalizer("train", (1, 6, 30)).fit(train)
    assert norm.mean[0, 2, 0] == pytest.approx(10.0, abs=0.2)
    assert norm(train).mean(dim=(0, 3)).abs().max() < 1e-4
    assert norm(test).mean() > 20  # test rows did not move the statistics
    per_item = FeatureNormalizer("utterance", (1, 6, 30))(test * torch.arange(1, 6).view(5, 1, 1, 1))
    torch.testing.assert_close(per_item.mean(dim=(1, 2, 3)), torch.zeros(5), atol=1e-4, rtol=0)
    vectors = FeatureNormalizer("train", (193,)).fit(torch.randn(40, 193) * 2 + 3)
    assert vectors.mean.shape == (193,)
    with pytest.raises(ValueError, match="normalize"):
        FeatureNormalizer("global", (193,))


def test_resident_batches_cover_every_row_and_fallback_matches(tiny_cfg_factory) -> None:
    x = torch.arange(33.0).view(33, 1)
    y = torch.arange(33)
    train = TensorBatches(x, y, batch_size=8, shuffle=True, seed=1)
    seen = torch.cat([b[1] for b in train])
    assert len(seen) == 32 and len(set(seen.tolist())) == 32  # a trailing batch of one is dropped (BatchNorm)
    assert len(train) == 4
    assert not torch.equal(seen, torch.arange(32))  # shuffled
    evaluation = TensorBatches(x, y, batch_size=8, shuffle=False)
    assert torch.equal(torch.cat([b[1] for b in evaluation]), y)  # evaluation keeps every row, in order
    resident_cfg = tiny_cfg_factory()
    loader_cfg = tiny_cfg_factory("data.device_max_mb=0.0001")
    prepared = prepare_data(resident_cfg, progress=False)
    resident = SERDataModule(resident_cfg, prepared, 0).val_dataloader()
    fallback = SERDataModule(loader_cfg, prepared, 0).val_dataloader()
    assert isinstance(resident, TensorBatches) and not isinstance(fallback, TensorBatches)
    assert torch.equal(_collect(resident)[0], _collect(fallback)[0])


def test_class_weights_come_from_the_train_split(tiny_cfg_factory) -> None:
    cfg = tiny_cfg_factory()
    prepared = prepare_data(cfg, progress=False)
    dm = SERDataModule(cfg, prepared, 0)
    counts = np.bincount(prepared.y[dm.train_idx], minlength=dm.n_classes)
    weights = dm.class_weights().numpy()
    np.testing.assert_allclose(
        weights * counts, np.full(dm.n_classes, counts.sum() / dm.n_classes), rtol=1e-5
    )


def test_speaker_normalisation_standardises_each_speaker_in_every_split(tiny_cfg_factory) -> None:
    cfg = tiny_cfg_factory("data.features.normalize=speaker")
    prepared = prepare_data(cfg, progress=False)
    dm = SERDataModule(cfg, prepared, 0)
    for name, idx in (("train", dm.train_idx), ("val", dm.val_idx), ("test", dm.test_idx)):
        x, _ = _collect(dm._loader(name, shuffle=False))
        speakers = np.asarray(prepared.speakers)[np.sort(idx)]
        for speaker in set(speakers):
            rows = x[torch.from_numpy(speakers == speaker)]
            zeros, ones = torch.zeros(1, rows.shape[2]), torch.ones(1, rows.shape[2])
            torch.testing.assert_close(rows.mean(dim=(0, 3)), zeros, atol=1e-4, rtol=0)
            torch.testing.assert_close(rows.std(dim=(0, 3)), ones, atol=1e-3, rtol=0)
        # unlike per-utterance normalisation, utterances of one speaker keep their level differences
        assert x.mean(dim=(1, 2, 3)).std() > 0.05
    # the model's own normaliser is the identity: the statistics are the data's
    _, model = _pipeline(cfg)
    probe = torch.randn(2, *dm.row_shape)
    assert torch.equal(model.frontend[-1](probe), probe)


def test_running_speaker_statistics_match_the_batch_ones() -> None:
    from ser.data.normalize import SpeakerStats, standardize_groups

    rng = np.random.default_rng(1)
    x = torch.from_numpy(rng.normal(3.0, 2.0, size=(12, 1, 5, 40)).astype(np.float32))
    groups = ["a"] * 7 + ["b"] * 5
    batch = standardize_groups(x, groups)
    running = SpeakerStats()
    for chunk in x[:7].split(3):  # a stream: windows arrive a few at a time
        running.update(chunk)
    torch.testing.assert_close(running.standardize(x[:7]), batch[:7], atol=1e-5, rtol=0)
    assert not torch.allclose(batch[7:], running.standardize(x[7:]), atol=1e-3)  # b has its own statistics
    with pytest.raises(ValueError, match="empty"):
        SpeakerStats().standardize(x)


def test_speaker_normalisation_refuses_what_it_cannot_standardise(tiny_cfg_factory) -> None:
    """Waveform augmentation changes the features after the cache; vectors (handcrafted, eGeMAPS) are
    standardised per speaker like spectrograms (tests/test_smile.py)."""
    from ser.config import ConfigError

    override, reason = "data.augment.noise_p=0.5", "waveform augmentation"
    cfg = tiny_cfg_factory("data.features.normalize=speaker", override)
    with pytest.raises(ConfigError, match=f"data.features.normalize.*{reason}"):
        prepare_data(cfg, progress=False)
