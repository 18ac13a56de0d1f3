"""Train-only augmentation: shape, gating by p and mode, reproducibility, bad arguments, measured effects."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ser.config import AugmentConfig
from ser.data.augment import (
    AddNoise,
    FreqWarp,
    Mixup,
    PitchShift,
    SpecAugment,
    SpeedPerturb,
    TimeShift,
    TimeStretch,
    build_mixup,
    build_spec_augment,
    build_wave_augment,
)

SR = 16000
T = 8000


def waves(batch: int = 4) -> torch.Tensor:
    t = torch.arange(T) / SR
    f0 = torch.tensor([180.0, 220.0, 260.0, 300.0, 340.0, 380.0])[:batch].unsqueeze(1)
    return torch.sin(2 * math.pi * f0 * t) * torch.hann_window(T)


def spec(batch: int = 4) -> torch.Tensor:
    return torch.randn(batch, 1, 32, 50, generator=torch.Generator().manual_seed(1)) + 3.0


FACTORIES = {
    "specaugment": (lambda p, g: SpecAugment(2, 8, 2, 10, p=p, generator=g), spec),
    "noise": (lambda p, g: AddNoise(5.0, 20.0, p=p, generator=g), waves),
    "pink_noise": (lambda p, g: AddNoise(5.0, 20.0, p=p, color="pink", generator=g), waves),
    "shift": (lambda p, g: TimeShift(1600, p=p, generator=g), waves),
    "speed": (lambda p, g: SpeedPerturb(0.8, 1.2, p=p, generator=g), waves),
    "pitch": (lambda p, g: PitchShift(3.0, p=p, generator=g), waves),
    "freq_warp": (lambda p, g: FreqWarp(0.2, p=p, generator=g), spec),
    "time_stretch": (lambda p, g: TimeStretch(0.2, p=p, generator=g), spec),
}


@pytest.mark.parametrize("name", FACTORIES)
def test_p1_changes_every_item_and_keeps_shape(name):
    make, data = FACTORIES[name]
    x = data()
    out = make(1.0, torch.Generator().manual_seed(0)).train()(x)
    assert out.shape == x.shape and out.dtype == x.dtype and torch.isfinite(out).all()
    for i in range(len(x)):
        assert not torch.allclose(out[i], x[i]), f"{name} left item {i} unchanged at p=1"


@pytest.mark.parametrize("name", FACTORIES)
def test_identity_at_p0_and_in_eval(name):
    make, data = FACTORIES[name]
    x = data()
    assert torch.equal(make(0.0, torch.Generator().manual_seed(0)).train()(x), x)
    assert torch.equal(make(1.0, torch.Generator().manual_seed(0)).eval()(x), x)


@pytest.mark.parametrize("name", FACTORIES)
def test_same_seed_same_output(name):
    make, data = FACTORIES[name]
    x = data()
    a = make(0.5, torch.Generator().manual_seed(7)).train()(x)
    b = make(0.5, torch.Generator().manual_seed(7)).train()(x)
    c = make(0.5, torch.Generator().manual_seed(8)).train()(x)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_p_gates_items_independently():
    x = waves(6).repeat(50, 1)  # 300 items
    out = TimeShift(800, p=0.3, generator=torch.Generator().manual_seed(0)).train()(x)
    changed = (out != x).any(dim=1).float().mean().item()
    assert 0.2 < changed < 0.4


@pytest.mark.parametrize(
    "build",
    [
        lambda: SpecAugment(p=1.5),
        lambda: SpecAugment(freq_width=-1),
        lambda: SpecAugment(time_masks=-2),
        lambda: SpecAugment(fill="nan"),
        lambda: AddNoise(30.0, 10.0),
        lambda: AddNoise(p=-0.1),
        lambda: AddNoise(color="blue"),
        lambda: TimeShift(-5),
        lambda: SpeedPerturb(1.2, 0.8),
        lambda: SpeedPerturb(0.0, 1.1),
        lambda: PitchShift(-1.0),
        lambda: PitchShift(2.0, hop_length=1024, n_fft=512),
    ],
)
def test_bad_arguments_raise(build):
    with pytest.raises(ValueError):
        build()


@pytest.mark.parametrize("color", ["white", "pink"])
def test_noise_snr_within_range(color):
    x = waves(6).repeat(5, 1)
    out = AddNoise(8.0, 12.0, p=1.0, color=color, generator=torch.Generator().manual_seed(3)).train()(x)
    noise = out - x
    snr = 10 * torch.log10(x.square().mean(1) / noise.square().mean(1))
    assert snr.min() >= 8.0 - 1e-3 and snr.max() <= 12.0 + 1e-3
    assert snr.max() - snr.min() > 1.0  # drawn per item, not one value for the batch


def test_time_shift_is_a_zero_filled_shift():
    x = torch.arange(1, 101, dtype=torch.float32).repeat(8, 1)
    out = TimeShift(10, p=1.0, generator=torch.Generator().manual_seed(0)).train()(x)
    for row in out:
        nz = row.nonzero().squeeze(1)
        first, last = int(nz[0]), int(nz[-1])
        shift = first if row[first] == 1 else -(int(row[first]) - 1)
        assert abs(shift) <= 10
        assert torch.equal(row[first : last + 1], x[0, first - shift : last + 1 - shift])
        assert (row[:first] == 0).all() and (row[last + 1 :] == 0).all()  # zero fill, no wrap-around


def dominant_hz(row: torch.Tensor) -> float:
    mag = torch.fft.rfft(row * torch.hann_window(row.numel())).abs()
    return float(mag.argmax()) * SR / row.numel()


def test_speed_perturb_scales_frequency_within_range():
    x = waves(4)
    out = SpeedPerturb(0.8, 1.2, p=1.0, generator=torch.Generator().manual_seed(0)).train()(x)
    for i in range(4):
        ratio = dominant_hz(out[i]) / dominant_hz(x[i])
        assert 0.8 - 0.03 <= ratio <= 1.2 + 0.03


def test_pitch_shift_moves_pitch_and_keeps_duration():
    x = waves(4)
    out = PitchShift(3.0, p=1.0, generator=torch.Generator().manual_seed(0)).train()(x)
    ratios = [dominant_hz(out[i]) / dominant_hz(x[i]) for i in range(4)]
    assert all(2 ** (-3.2 / 12) <= r <= 2 ** (3.2 / 12) for r in ratios)
    assert max(abs(r - 1) for r in ratios) > 0.03  # it actually shifted
    # Duration (the Hann envelope) is kept, unlike a speed change: the energy stays centred.
    centre = lambda w: float((w.square() * torch.arange(T)).sum() / w.square().sum())  # noqa: E731
    for i in range(4):
        assert abs(centre(out[i]) - centre(x[i])) < 0.02 * T


def test_specaugment_masks_whole_bands_with_the_item_mean():
    x = spec(16)
    out = SpecAugment(1, 6, 0, 0, p=1.0, generator=torch.Generator().manual_seed(4)).train()(x)
    widths = []
    for i in range(16):
        changed_bins = (out[i, 0] != x[i, 0]).any(dim=1)
        widths.append(int(changed_bins.sum()))
        masked = out[i, 0][changed_bins]
        assert torch.allclose(masked, x[i].mean().expand_as(masked))
        if widths[-1]:  # one mask: a single contiguous band spanning all frames
            band = changed_bins.nonzero().squeeze(1)
            assert int(band[-1] - band[0]) + 1 == widths[-1]
            assert (out[i, 0, band] != x[i, 0, band]).all()
    assert max(widths) <= 6 and sum(w > 0 for w in widths) >= 10  # widths drawn from 0..6


def test_builders_follow_the_config():
    assert build_wave_augment(AugmentConfig(), SR) is None
    assert build_spec_augment(AugmentConfig()) is None
    cfg = AugmentConfig(noise_p=0.5, shift_p=1.0, shift_max=0.1, pitch_p=0.2, specaugment_p=0.3)
    chain = build_wave_augment(cfg, SR, generator=torch.Generator().manual_seed(0))
    kinds = [type(m) for m in chain]
    assert kinds == [PitchShift, TimeShift, AddNoise]
    assert chain[1].max_shift == 1600
    assert isinstance(build_spec_augment(cfg), SpecAugment)
    x = waves(4)
    assert torch.equal(chain.eval()(x), x)
    assert chain.train()(x).shape == x.shape
    with pytest.raises(ValueError):
        build_wave_augment(AugmentConfig(noise_p=2.0), SR)


def test_default_generator_and_numpy_free():
    x = waves(2)
    out = AddNoise(10.0, 10.0, p=1.0).train()(x)  # no generator: torch's default, still the right SNR
    snr = 10 * torch.log10(x.square().mean(1) / (out - x).square().mean(1))
    np.testing.assert_allclose(snr.numpy(), 10.0, atol=1e-3)


def test_mixup_mixes_items_with_a_partner_and_keeps_the_dominant_label():
    x = torch.eye(8)  # row i marks item i, so each mixed row shows its two sources and weights
    y = torch.arange(8)
    mix = Mixup(0.4, generator=torch.Generator().manual_seed(3)).train()
    lams = []
    for _ in range(20):
        out, partner, lam = mix(x, y)
        lams.append(lam)
        assert 0.5 <= lam <= 1.0
        for i in range(8):
            expected = lam * x[i] + (1 - lam) * x[partner[i]]
            torch.testing.assert_close(out[i], expected)
    assert len(set(lams)) == 20 and min(lams) < 0.9  # drawn per batch from Beta(0.4, 0.4), not fixed
    again = Mixup(0.4, generator=torch.Generator().manual_seed(3)).train()
    out2, partner2, lam2 = again(x, y)
    first = Mixup(0.4, generator=torch.Generator().manual_seed(3)).train()(x, y)
    assert lam2 == first[2] and torch.equal(partner2, first[1]) and torch.equal(out2, first[0])
    same, same_y, one = mix.eval()(x, y)
    assert one == 1.0 and same is x and same_y is y


def test_mixup_builder_and_bad_alpha():
    assert build_mixup(AugmentConfig()) is None
    assert build_mixup(AugmentConfig(mixup_alpha=0.2)).alpha == 0.2
    for alpha in (-1.0, float("nan")):
        with pytest.raises(ValueError, match="alpha"):
            Mixup(alpha)


def mel_centres(n_mels: int = 32) -> torch.Tensor:
    import librosa

    return torch.tensor(librosa.mel_frequencies(n_mels=n_mels + 2, fmax=SR / 2)[1:-1], dtype=torch.float32)


def test_freq_warp_moves_a_spectral_peak_by_the_warp_factor_in_hz():
    centres = mel_centres()
    warp = FreqWarp(0.15, p=1.0, bin_freqs=centres)
    for alpha in (0.87, 1.0, 1.12):
        positions = warp._source_positions(torch.tensor([alpha]), len(centres))[0]
        # output bin k reads the input at frequency f_k / alpha: interpolate the centres there
        read = np.interp(positions.numpy(), np.arange(len(centres)), centres.numpy())
        inside = (centres / alpha > centres[0]) & (centres / alpha < centres[-1])
        np.testing.assert_allclose(read[inside.numpy()], (centres / alpha)[inside].numpy(), rtol=1e-4)
    x = torch.zeros(1, 1, len(centres), 5)
    x[0, 0, 20] = 1.0  # a formant at centres[20]
    out = _warp_by(warp, x, 1.12)
    peak = int(out[0, 0, :, 0].argmax())
    assert abs(float(centres[peak]) / float(centres[20]) - 1.12) < 0.06


def _warp_by(warp: FreqWarp, x: torch.Tensor, alpha: float) -> torch.Tensor:
    from ser.data.augment import _interp_last

    pos = warp._source_positions(torch.tensor([alpha]), x.shape[-2])
    return _interp_last(x.transpose(-1, -2), pos).transpose(-1, -2)


def test_time_stretch_moves_frames_about_the_centre():
    x = torch.zeros(1, 2, 4, 101)
    x[:, :, :, 80] = 1.0
    stretch = TimeStretch(0.3, p=1.0, generator=torch.Generator().manual_seed(3)).train()
    out = stretch(x)
    peak = int(out[0, 0, 0].argmax())
    # output frame t reads input frame c + (t - c) * rate, so the spike lands at c + (80 - c) / rate
    rate = (80 - 50) / (peak - 50)
    assert 0.7 <= rate <= 1.3 and peak != 80
    assert torch.equal(out[0, 0], out[0, 1])  # every channel and bin the same way
    assert torch.equal(TimeStretch(0.0, p=1.0).train()(x), x)


def test_spectrogram_builder_orders_warp_stretch_masks():
    cfg = AugmentConfig(freq_warp_p=0.5, time_stretch_p=0.5, specaugment_p=0.5)
    chain = build_spec_augment(cfg, bin_freqs=mel_centres())
    assert [type(m) for m in chain] == [FreqWarp, TimeStretch, SpecAugment]
    assert isinstance(build_spec_augment(AugmentConfig(freq_warp_p=1.0)), FreqWarp)
    with pytest.raises(ValueError):
        FreqWarp(0.6)
    with pytest.raises(ValueError):
        FreqWarp(0.1, bin_freqs=torch.tensor([3.0, 2.0, 1.0]))


def test_freq_warp_needs_log_mel_and_uses_the_mel_centres():
    from ser.config import ConfigError, load_config
    from ser.models.pipeline import feature_bin_freqs

    cfg = load_config(overrides=["data.augment.freq_warp_p=0.5", "data.features.n_mels=32"])
    np.testing.assert_allclose(feature_bin_freqs(cfg, "logmel").numpy(), mel_centres(32).numpy(), rtol=1e-5)
    assert feature_bin_freqs(load_config(), "logmel") is None
    with pytest.raises(ConfigError, match="freq_warp_p"):
        feature_bin_freqs(cfg, "mfcc")
