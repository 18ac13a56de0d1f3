"""Train-only augmentation: small batched nn.Modules with an injected torch.Generator.

Each transform is applied to each item with probability `p` (per-example, like torch-audiomentations),
draws its parameters from `generator` (torch's default one when None) and is the identity when the
module is in eval mode, so validation, test and prediction never see it. Everything is batched tensor
work and runs on whatever device the input lives on; random numbers are drawn on the generator's device
and moved, so one CPU generator makes a run reproducible on CPU and GPU alike.

Waveform transforms take [B, T]; SpecAugment takes [B, C, F, T] (or [B, F, T]) features.
"""

from __future__ import annotations

import math
from typing import Any, Optional

import torch
from torch import nn


def _check_p(p: float) -> float:
    if not 0.0 <= float(p) <= 1.0:
        raise ValueError(f"augmentation probability p must be in [0, 1], got {p}")
    return float(p)


def _check_range(name: str, low: float, high: float, positive: bool = False) -> None:
    if low > high:
        raise ValueError(f"{name}: min {low} is greater than max {high}")
    if positive and low <= 0:
        raise ValueError(f"{name}: values must be > 0, got min {low}")


class RandomTransform(nn.Module):
    """Per-item Bernoulli(p) gate around `apply`, identity in eval mode."""

    def __init__(self, p: float, generator: Optional[torch.Generator] = None) -> None:
        super().__init__()
        self.p = _check_p(p)
        self.generator = generator

    def _rand(self, *shape: int, device: torch.device) -> torch.Tensor:
        """Uniform [0, 1) numbers from the injected generator, delivered on `device`."""
        g = self.generator
        if g is None:
            return torch.rand(shape, device=device)
        return torch.rand(shape, generator=g, device=g.device).to(device)

    def _randn(self, *shape: int, device: torch.device) -> torch.Tensor:
        g = self.generator
        if g is None:
            return torch.randn(shape, device=device)
        return torch.randn(shape, generator=g, device=g.device).to(device)

    def _uniform(self, low: float, high: float, n: int, device: torch.device) -> torch.Tensor:
        return low + (high - low) * self._rand(n, device=device)

    def apply(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0 or x.numel() == 0:
            return x
        chosen = (self._rand(x.shape[0], device=x.device) < self.p).nonzero().squeeze(1)
        if chosen.numel() == 0:
            return x
        if chosen.numel() == x.shape[0]:
            return self.apply(x)
        out = x.clone()
        out[chosen] = self.apply(x[chosen])
        return out

    def extra_repr(self) -> str:
        return f"p={self.p}"


def _interp(x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    """Linear interpolation of rows x [B, L] at fractional positions pos [B, N]; zero outside [0, L-1]."""
    last = x.shape[-1] - 1
    i0 = pos.floor()
    w = (pos - i0).to(x.dtype)
    i0 = i0.long()
    left = x.gather(1, i0.clamp(0, last))
    right = x.gather(1, (i0 + 1).clamp(0, last))
    inside = (pos >= 0) & (pos <= last)
    return (left + w * (right - left)) * inside


class SpecAugment(RandomTransform):
    """Frequency and time masks (Park et al. 2019) on [B, C, F, T] or [B, F, T] features.

    Each mask has a width drawn uniformly from 0..width and a uniform start; masked cells take the
    item's mean in that channel (`fill="mean"`, neutral for un-normalised dB maps) or 0 (`fill="zero"`).
    """

    def __init__(
        self,
        freq_masks: int = 2,
        freq_width: int = 8,
        time_masks: int = 2,
        time_width: int = 20,
        p: float = 1.0,
        fill: str = "mean",
        generator: Optional[torch.Generator] = None,
    ) -> None:
        super().__init__(p, generator)
        for name, value in (("freq_masks", freq_masks), ("freq_width", freq_width)):
            if value < 0:
                raise ValueError(f"SpecAugment {name} must be >= 0, got {value}")
        for name, value in (("time_masks", time_masks), ("time_width", time_width)):
            if value < 0:
                raise ValueError(f"SpecAugment {name} must be >= 0, got {value}")
        if fill not in ("mean", "zero"):
            raise ValueError(f"SpecAugment fill must be 'mean' or 'zero', got {fill!r}")
        self.freq_masks, self.freq_width = int(freq_masks), int(freq_width)
        self.time_masks, self.time_width = int(time_masks), int(time_width)
        self.fill = fill

    def _masks(self, batch: int, n_masks: int, width: int, size: int, device: torch.device) -> torch.Tensor:
        """[B, size] bool, True where any of the item's masks covers the position."""
        if n_masks == 0 or width == 0:
            return torch.zeros(batch, size, dtype=torch.bool, device=device)
        width = min(width, size)
        w = (self._rand(batch, n_masks, device=device) * (width + 1)).floor()
        start = (self._rand(batch, n_masks, device=device) * (size - w + 1)).floor()
        pos = torch.arange(size, device=device).view(1, 1, size)
        covered = (pos >= start.unsqueeze(-1)) & (pos < (start + w).unsqueeze(-1))
        return covered.any(dim=1)

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() < 3:
            raise ValueError(f"SpecAugment expects [B, (C,) F, T] features, got shape {tuple(x.shape)}")
        b, f, t = x.shape[0], x.shape[-2], x.shape[-1]
        freq = self._masks(b, self.freq_masks, self.freq_width, f, x.device)
        time = self._masks(b, self.time_masks, self.time_width, t, x.device)
        mask = freq.unsqueeze(-1) | time.unsqueeze(-2)  # [B, F, T]
        mask = mask.view(b, *([1] * (x.dim() - 3)), f, t)
        if self.fill == "zero":
            return x.masked_fill(mask, 0.0)
        mean = x.mean(dim=(-2, -1), keepdim=True)  # per item and channel (deltas have their own level)
        return torch.where(mask, mean, x)

    def extra_repr(self) -> str:
        return (
            f"freq_masks={self.freq_masks}, freq_width={self.freq_width}, time_masks={self.time_masks}, "
            f"time_width={self.time_width}, fill={self.fill}, p={self.p}"
        )


class AddNoise(RandomTransform):
    """Additive white or pink noise at a per-item SNR drawn uniformly from [snr_db_min, snr_db_max]."""

    def __init__(
        self,
        snr_db_min: float = 10.0,
        snr_db_max: float = 30.0,
        p: float = 1.0,
        color: str = "white",
        generator: Optional[torch.Generator] = None,
    ) -> None:
        super().__init__(p, generator)
        _check_range("AddNoise snr_db", snr_db_min, snr_db_max)
        if color not in ("white", "pink"):
            raise ValueError(f"AddNoise color must be 'white' or 'pink', got {color!r}")
        self.snr_db_min, self.snr_db_max, self.color = float(snr_db_min), float(snr_db_max), color

    def _noise(self, b: int, t: int, device: torch.device) -> torch.Tensor:
        noise = self._randn(b, t, device=device)
        if self.color == "pink":  # 1/f power: scale the spectrum's amplitude by 1/sqrt(f)
            spec = torch.fft.rfft(noise, dim=-1)
            freqs = torch.arange(spec.shape[-1], device=device, dtype=noise.dtype)
            spec = spec / freqs.clamp_min(1.0).sqrt()
            spec[:, 0] = 0
            noise = torch.fft.irfft(spec, n=t, dim=-1)
        return noise

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        b, t = x.shape[0], x.shape[-1]
        snr = self._uniform(self.snr_db_min, self.snr_db_max, b, x.device)
        noise = self._noise(b, t, x.device).to(x.dtype)
        signal_power = x.square().mean(dim=-1, keepdim=True)
        noise_power = noise.square().mean(dim=-1, keepdim=True).clamp_min(1e-12)
        # Scale by the drawn noise's actual power, so the SNR is exact rather than only expected.
        gain = torch.sqrt(signal_power / noise_power / 10.0 ** (snr.unsqueeze(-1) / 10.0))
        return x + gain * noise

    def extra_repr(self) -> str:
        return f"snr_db=[{self.snr_db_min}, {self.snr_db_max}], color={self.color}, p={self.p}"


class TimeShift(RandomTransform):
    """Shift each waveform by an integer offset in [-max_shift, max_shift] samples, zero-filled (no wrap)."""

    def __init__(self, max_shift: int, p: float = 1.0, generator: Optional[torch.Generator] = None) -> None:
        super().__init__(p, generator)
        if max_shift < 0:
            raise ValueError(f"TimeShift max_shift must be >= 0 samples, got {max_shift}")
        self.max_shift = int(max_shift)

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        b, t = x.shape[0], x.shape[-1]
        shift = (self._rand(b, device=x.device) * (2 * self.max_shift + 1)).floor() - self.max_shift
        src = torch.arange(t, device=x.device).unsqueeze(0) - shift.long().unsqueeze(1)
        inside = (src >= 0) & (src < t)
        return x.gather(1, src.clamp(0, t - 1)) * inside

    def extra_repr(self) -> str:
        return f"max_shift={self.max_shift}, p={self.p}"


class SpeedPerturb(RandomTransform):
    """Play each item at a rate in [min_rate, max_rate] (tempo and pitch change together).

    Linear-interpolation resampling about the centre of the clip, then zero-padded/cropped back to T,
    so a centre-cropped utterance stays centred. No anti-alias filter: at rates near 1 the folded band
    is the top few hundred Hz, which the log-mel front end barely weights.
    """

    def __init__(
        self,
        min_rate: float = 0.9,
        max_rate: float = 1.1,
        p: float = 1.0,
        generator: Optional[torch.Generator] = None,
    ) -> None:
        super().__init__(p, generator)
        _check_range("SpeedPerturb rate", min_rate, max_rate, positive=True)
        self.min_rate, self.max_rate = float(min_rate), float(max_rate)

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        b, t = x.shape[0], x.shape[-1]
        rate = self._uniform(self.min_rate, self.max_rate, b, x.device).unsqueeze(1)
        centre = (t - 1) / 2.0
        pos = centre + (torch.arange(t, device=x.device, dtype=rate.dtype).unsqueeze(0) - centre) * rate
        return _interp(x, pos)

    def extra_repr(self) -> str:
        return f"rate=[{self.min_rate}, {self.max_rate}], p={self.p}"


class PitchShift(RandomTransform):
    """Shift pitch by a per-item amount in [-semitones, semitones] while keeping duration.

    Batched version of librosa's `effects.pitch_shift`: a phase-vocoder time stretch by the pitch factor
    f = 2^(s/12) (torch.stft/istft, per-item frame read positions gathered at once), then linear
    resampling by f back to T samples. Chosen over a frequency warp inside the front end because it keeps
    augmentation in the waveform domain, composable with noise/shift/speed and independent of the
    feature kind.
    """

    def __init__(
        self,
        semitones: float = 2.0,
        p: float = 1.0,
        n_fft: int = 512,
        hop_length: int = 128,
        generator: Optional[torch.Generator] = None,
    ) -> None:
        super().__init__(p, generator)
        if semitones < 0:
            raise ValueError(f"PitchShift semitones must be >= 0, got {semitones}")
        if n_fft <= 0 or not 0 < hop_length <= n_fft:
            raise ValueError(f"PitchShift needs 0 < hop_length <= n_fft, got {hop_length} and {n_fft}")
        self.semitones, self.n_fft, self.hop_length = float(semitones), int(n_fft), int(hop_length)
        self.register_buffer("window", torch.hann_window(self.n_fft), persistent=False)

    def _stretch(self, x: torch.Tensor, factor: torch.Tensor, max_factor: float) -> torch.Tensor:
        """Phase vocoder: make each item `factor` times longer at the same pitch."""
        hop = self.hop_length
        spec = torch.stft(x, self.n_fft, hop, window=self.window, center=True, return_complex=True)
        b, k, m = spec.shape
        n_out = int(math.ceil(m * max_factor)) + 1
        # Magnitude and phase once per input frame (plus two zero frames past the end), then gathered.
        mag_in = torch.nn.functional.pad(spec.abs(), (0, 2))
        phase_in = torch.nn.functional.pad(spec.angle(), (0, 2))
        steps = torch.arange(n_out, device=x.device, dtype=factor.dtype).unsqueeze(0) / factor.unsqueeze(1)
        base = steps.floor().clamp(max=m)  # [B, n_out]; at/after the end reads the zero frames
        alpha = (steps - base).clamp(0, 1).unsqueeze(1)
        idx0 = base.long().unsqueeze(1).expand(b, k, n_out)
        m0, m1 = mag_in.gather(2, idx0), mag_in.gather(2, idx0 + 1)
        mag = m0 + alpha * (m1 - m0)
        advance = torch.linspace(0, math.pi * hop, k, device=x.device).view(1, k, 1)
        dphase = phase_in.gather(2, idx0 + 1) - phase_in.gather(2, idx0) - advance
        dphase = dphase - 2 * math.pi * torch.round(dphase / (2 * math.pi))
        step = torch.remainder(advance + dphase + math.pi, 2 * math.pi) - math.pi  # small before cumsum
        phase = phase_in[:, :, :1] + torch.cumsum(step, dim=-1) - step  # exclusive running sum
        out = torch.polar(mag, phase)
        return torch.istft(out, self.n_fft, hop, window=self.window, center=True, length=(n_out - 1) * hop)

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        b, t = x.shape[0], x.shape[-1]
        semis = self._uniform(-self.semitones, self.semitones, b, x.device)
        factor = torch.pow(2.0, semis / 12.0)
        stretched = self._stretch(x.float(), factor, 2.0 ** (self.semitones / 12.0))
        pos = torch.arange(t, device=x.device, dtype=factor.dtype).unsqueeze(0) * factor.unsqueeze(1)
        return _interp(stretched, pos).to(x.dtype)

    def extra_repr(self) -> str:
        return f"semitones={self.semitones}, n_fft={self.n_fft}, hop_length={self.hop_length}, p={self.p}"


def _interp_last(x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    """x [B, ..., L] read at fractional positions pos [B, L'] along the last axis, edges repeated."""
    last = x.shape[-1] - 1
    pos = pos.clamp(0, last)
    i0 = pos.floor().long()
    i1 = (i0 + 1).clamp(max=last)
    w = (pos - i0.to(pos.dtype)).to(x.dtype)
    shape = (x.shape[0], *([1] * (x.dim() - 2)), pos.shape[-1])
    i0, i1, w = i0.view(shape), i1.view(shape), w.view(shape)
    expand = (*x.shape[:-1], pos.shape[-1])
    left = x.gather(-1, i0.expand(expand))
    right = x.gather(-1, i1.expand(expand))
    return left + w * (right - left)


class FreqWarp(RandomTransform):
    """Vocal tract length perturbation (Jaitly & Hinton 2013) on spectrogram features [B, C, F, T].

    Each item's frequency axis is scaled by a factor drawn from [1 - max_warp, 1 + max_warp]: output bin
    k takes the value the input has at frequency f_k / alpha, read by linear interpolation between bins
    (`bin_freqs` are the bins' centre frequencies in Hz, e.g. the mel filters' centres; None: bins are
    equally spaced). A speaker with a longer or shorter vocal tract than anyone in the training split is
    simulated on the cached features, so it composes with per-speaker standardisation; time derivatives
    (delta channels) commute with it, so it may run after them.
    """

    def __init__(
        self,
        max_warp: float = 0.1,
        p: float = 1.0,
        bin_freqs: Optional[torch.Tensor] = None,
        generator: Optional[torch.Generator] = None,
    ) -> None:
        super().__init__(p, generator)
        if not 0.0 <= float(max_warp) < 0.5:
            raise ValueError(f"FreqWarp max_warp must be in [0, 0.5), got {max_warp}")
        self.max_warp = float(max_warp)
        freqs = None if bin_freqs is None else torch.as_tensor(bin_freqs, dtype=torch.float32).flatten()
        if freqs is not None and (freqs.numel() < 2 or not bool(torch.all(freqs[1:] > freqs[:-1]))):
            raise ValueError("FreqWarp bin_freqs must be at least 2 increasing frequencies")
        self.register_buffer("bin_freqs", freqs, persistent=False)

    def _source_positions(self, alpha: torch.Tensor, n_bins: int) -> torch.Tensor:
        """[B, F] fractional input bins that output bins read from."""
        if self.bin_freqs is None:
            k = torch.arange(n_bins, device=alpha.device, dtype=alpha.dtype)
            return k.unsqueeze(0) / alpha.unsqueeze(1)
        freqs = self.bin_freqs.to(alpha.device, alpha.dtype)
        if freqs.numel() != n_bins:
            raise ValueError(f"FreqWarp has {freqs.numel()} bin frequencies for {n_bins} bins")
        target = freqs.unsqueeze(0) / alpha.unsqueeze(1)  # [B, F] Hz
        hi = torch.searchsorted(freqs, target.contiguous()).clamp(1, n_bins - 1)
        lo = hi - 1
        f_lo, f_hi = freqs[lo], freqs[hi]
        return lo.to(alpha.dtype) + ((target - f_lo) / (f_hi - f_lo)).clamp(0, 1)

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() < 3:
            raise ValueError(f"FreqWarp expects [B, (C,) F, T] features, got shape {tuple(x.shape)}")
        b, f = x.shape[0], x.shape[-2]
        alpha = self._uniform(1.0 - self.max_warp, 1.0 + self.max_warp, b, x.device)
        pos = self._source_positions(alpha.to(torch.float32), f)
        warped = _interp_last(x.transpose(-1, -2), pos)  # [B, C, T, F]
        return warped.transpose(-1, -2)

    def extra_repr(self) -> str:
        return f"max_warp={self.max_warp}, p={self.p}"


class TimeStretch(RandomTransform):
    """Tempo perturbation on spectrogram features [B, C, F, T]: each item's time axis is resampled about
    its centre at a rate drawn from [1 - max_stretch, 1 + max_stretch] (frames past the clip's ends repeat
    the edge frame), so speaking rate varies without recomputing features."""

    def __init__(
        self, max_stretch: float = 0.1, p: float = 1.0, generator: Optional[torch.Generator] = None
    ) -> None:
        super().__init__(p, generator)
        if not 0.0 <= float(max_stretch) < 0.5:
            raise ValueError(f"TimeStretch max_stretch must be in [0, 0.5), got {max_stretch}")
        self.max_stretch = float(max_stretch)

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() < 3:
            raise ValueError(f"TimeStretch expects [B, (C,) F, T] features, got shape {tuple(x.shape)}")
        b, t = x.shape[0], x.shape[-1]
        rate = self._uniform(1.0 - self.max_stretch, 1.0 + self.max_stretch, b, x.device).unsqueeze(1)
        centre = (t - 1) / 2.0
        frames = torch.arange(t, device=x.device, dtype=rate.dtype).unsqueeze(0)
        return _interp_last(x, centre + (frames - centre) * rate)

    def extra_repr(self) -> str:
        return f"max_stretch={self.max_stretch}, p={self.p}"


def build_wave_augment(
    aug: Any, sample_rate: int, generator: Optional[torch.Generator] = None
) -> Optional[nn.Module]:
    """Speed, pitch, shift, then noise (last, so its SNR holds for the final signal); None if all off."""
    parts: list[nn.Module] = []
    if float(aug.speed_p) > 0:
        parts.append(SpeedPerturb(aug.speed_min, aug.speed_max, aug.speed_p, generator=generator))
    if float(aug.pitch_p) > 0:
        n_fft = 2 ** round(math.log2(sample_rate * 0.032))  # ~32 ms frames at any rate
        parts.append(
            PitchShift(
                aug.pitch_semitones, aug.pitch_p, n_fft=n_fft, hop_length=n_fft // 4, generator=generator
            )
        )
    if float(aug.shift_p) > 0:
        if float(aug.shift_max) < 0:
            raise ValueError(f"data.augment.shift_max must be >= 0 seconds, got {aug.shift_max}")
        parts.append(
            TimeShift(int(round(float(aug.shift_max) * sample_rate)), aug.shift_p, generator=generator)
        )
    if float(aug.noise_p) > 0:
        parts.append(AddNoise(aug.snr_db_min, aug.snr_db_max, aug.noise_p, generator=generator))
    return nn.Sequential(*parts) if parts else None


def build_spec_augment(
    aug: Any, generator: Optional[torch.Generator] = None, bin_freqs: Optional[torch.Tensor] = None
) -> Optional[nn.Module]:
    """Feature-domain augmentation from the config: frequency warp, time stretch, then SpecAugment's masks
    (each only when its probability is > 0); None when all are off. `bin_freqs`: the feature bins' centre
    frequencies (log-mel), so the warp scales Hz rather than bin numbers."""
    parts: list[nn.Module] = []
    if float(aug.freq_warp_p) > 0:
        parts.append(FreqWarp(aug.freq_warp_max, aug.freq_warp_p, bin_freqs=bin_freqs, generator=generator))
    if float(aug.time_stretch_p) > 0:
        parts.append(TimeStretch(aug.time_stretch_max, aug.time_stretch_p, generator=generator))
    if float(aug.specaugment_p) > 0:
        parts.append(
            SpecAugment(
                aug.freq_masks,
                aug.freq_width,
                aug.time_masks,
                aug.time_width,
                aug.specaugment_p,
                generator=generator,
            )
        )
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else nn.Sequential(*parts)


class Mixup(nn.Module):
    """Mixup (Zhang et al. 2018) of a training batch with a shuffled copy of itself.

    One weight lam ~ Beta(alpha, alpha) per batch, folded to lam >= 0.5 so that `y` stays the dominant
    label of each mixed item (train metrics count against it). It mixes the network input, after the
    feature front end and SpecAugment, so it works for spectrograms and feature vectors alike. Needs
    the labels, so the training objective calls it rather than the feature pipeline.
    """

    def __init__(self, alpha: float, generator: Optional[torch.Generator] = None) -> None:
        super().__init__()
        if not (float(alpha) > 0 and math.isfinite(float(alpha))):
            raise ValueError(f"mixup alpha must be a finite number > 0, got {alpha}")
        self.alpha = float(alpha)
        self.generator = generator

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, float]:
        """(mixed x, partner labels, lam); identity (lam 1) in eval mode or for a batch of one."""
        if not self.training or x.shape[0] < 2:
            return x, y, 1.0
        g = self.generator
        device = g.device if g is not None else torch.device("cpu")
        # Beta(a, a) as the ratio of two Gamma(a) draws, which take the injected generator.
        gammas = torch._standard_gamma(
            torch.full((2,), self.alpha, dtype=torch.float64, device=device), generator=g
        )
        lam = float(gammas[0] / gammas.sum())
        lam = max(lam, 1.0 - lam)
        perm = torch.randperm(x.shape[0], generator=g, device=device).to(x.device)
        return lam * x + (1.0 - lam) * x[perm], y[perm], lam

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}"


def build_mixup(aug: Any, generator: Optional[torch.Generator] = None) -> Optional[Mixup]:
    """Mixup from the config, or None when `mixup_alpha` is 0."""
    if float(aug.mixup_alpha) <= 0:
        return None
    return Mixup(aug.mixup_alpha, generator=generator)
