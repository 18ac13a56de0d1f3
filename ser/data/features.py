"""Waveform -> log-mel / MFCC (torch, batched, any device) and the 193-value handcrafted vector (librosa).

The spectrogram front ends are nn.Modules so that waveform augmentation can run batched on the training
device right before featurisation; their numbers match librosa's `melspectrogram` + `power_to_db` (and
`feature.mfcc`) so cached features and on-device features are interchangeable.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Optional, Union

import numpy as np
import torch
from torch import nn

KINDS = ("logmel", "mfcc", "handcrafted", "egemaps", "gemaps", "compare")
SMILE_KINDS = ("egemaps", "gemaps", "compare")  # openSMILE functionals (ser.data.smile)
VECTOR_KINDS = ("handcrafted", *SMILE_KINDS)  # one fixed vector per clip
HANDCRAFTED_DIM = 193
# Order of the handcrafted vector (time-means of each librosa feature), the earlier projects' layout.
HANDCRAFTED_LAYOUT = (
    ("mfcc", 40),
    ("chroma_stft", 12),
    ("melspectrogram", 128),
    ("contrast", 7),
    ("tonnetz", 6),
)

Array = Union[np.ndarray, torch.Tensor]


class LogMel(nn.Module):
    """[B, T] waveforms -> [B, n_mels, frames] log-mel power in dB, as librosa computes it.

    STFT with a periodic Hann window, `center=True` and zero padding (librosa 0.11's default), power
    spectrum, Slaney mel filters from `librosa.filters.mel`, then `10 log10(max(S, 1e-10))` with ref 1.0
    and, per utterance, a floor at `max - top_db`.
    """

    def __init__(
        self,
        sample_rate: int,
        n_fft: int = 512,
        hop_length: int = 160,
        win_length: Optional[int] = None,
        n_mels: int = 64,
        fmin: float = 0.0,
        fmax: Optional[float] = None,
        top_db: Optional[float] = 80.0,
    ) -> None:
        super().__init__()
        import librosa

        win_length = int(win_length or n_fft)
        if not 0 < win_length <= n_fft:
            raise ValueError(f"win_length must be in (0, n_fft={n_fft}], got {win_length}")
        if hop_length <= 0 or n_mels <= 0:
            raise ValueError(f"hop_length and n_mels must be positive, got {hop_length} and {n_mels}")
        fmax_v = float(fmax) if fmax is not None else sample_rate / 2.0
        if not 0 <= fmin < fmax_v <= sample_rate / 2.0:
            raise ValueError(f"need 0 <= fmin < fmax <= sample_rate/2, got fmin={fmin}, fmax={fmax_v}")
        if top_db is not None and top_db < 0:
            raise ValueError(f"top_db must be non-negative, got {top_db}")
        self.sample_rate, self.n_fft, self.hop_length = int(sample_rate), int(n_fft), int(hop_length)
        self.win_length, self.n_mels, self.top_db = win_length, int(n_mels), top_db
        fb = librosa.filters.mel(
            sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax_v, dtype=np.float32
        )
        # Non-persistent: derived from the constructor arguments, so checkpoints stay small and portable.
        self.register_buffer("mel_fb", torch.from_numpy(fb), persistent=False)
        self.register_buffer("window", torch.hann_window(win_length, periodic=True), persistent=False)

    def n_frames(self, n_samples: int) -> int:
        return 1 + n_samples // self.hop_length

    def power(self, wave: torch.Tensor) -> torch.Tensor:
        """[B, T] -> linear-frequency power spectrogram [B, 1 + n_fft // 2, frames]."""
        spec = torch.stft(
            wave.float(),
            n_fft=self.n_fft,
            hop_length=self.hop_length,
            win_length=self.win_length,
            window=self.window,
            center=True,
            pad_mode="constant",
            return_complex=True,
        )
        return spec.real.square() + spec.imag.square()

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        squeeze = wave.dim() == 1
        if squeeze:
            wave = wave.unsqueeze(0)
        mel = torch.matmul(self.mel_fb, self.power(wave))
        db = power_to_db(mel, self.top_db)
        return db.squeeze(0) if squeeze else db


def power_to_db(power: torch.Tensor, top_db: Optional[float] = 80.0, amin: float = 1e-10) -> torch.Tensor:
    """librosa.power_to_db with ref=1.0, the top_db floor taken per item over the last two axes."""
    db = 10.0 * torch.log10(power.clamp_min(amin))
    if top_db is not None:
        peak = db.amax(dim=(-2, -1), keepdim=True)
        db = torch.maximum(db, peak - top_db)
    return db


def dct_matrix(n_mfcc: int, n_mels: int) -> torch.Tensor:
    """Orthonormal DCT-II basis [n_mfcc, n_mels] (scipy's `dct(type=2, norm='ortho')`)."""
    n = torch.arange(n_mels, dtype=torch.float64)
    k = torch.arange(n_mfcc, dtype=torch.float64).unsqueeze(1)
    basis = torch.cos(math.pi / n_mels * (n + 0.5) * k) * math.sqrt(2.0 / n_mels)
    basis[0] /= math.sqrt(2.0)
    return basis.float()


class MFCC(nn.Module):
    """[B, T] -> [B, n_mfcc, frames]: DCT-II (ortho) of LogMel, like `librosa.feature.mfcc(S=db)`."""

    def __init__(self, n_mfcc: int = 40, **logmel: Any) -> None:
        super().__init__()
        self.logmel = LogMel(**logmel)
        if not 0 < n_mfcc <= self.logmel.n_mels:
            raise ValueError(f"n_mfcc must be in (0, n_mels={self.logmel.n_mels}], got {n_mfcc}")
        self.n_mfcc = int(n_mfcc)
        self.register_buffer("dct", dct_matrix(n_mfcc, self.logmel.n_mels), persistent=False)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        return torch.matmul(self.dct, self.logmel(wave))


class AddChannel(nn.Module):
    """[B, F, T] -> [B, 1, F, T]: the channel axis 2-D CNNs expect."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.unsqueeze(-3)


class Deltas(nn.Module):
    """[B, C, F, T] -> [B, C * (1 + order), F, T]: the features, then their time derivatives as channels.

    Each derivative is the regression slope over +-`half_width` frames (HTK's delta, which equals
    `librosa.feature.delta(x, width=2 * half_width + 1, order=1, mode="nearest")`), edges repeated;
    order 2 stacks the delta of the delta. Cheap batched torch work on the training device, so the
    cache stores one channel and any model can ask for the dynamics.
    """

    def __init__(self, order: int, half_width: int = 2) -> None:
        super().__init__()
        if order not in (1, 2):
            raise ValueError(f"data.features.deltas must be 0, 1 or 2, got {order}")
        if half_width < 1:
            raise ValueError(f"delta half width must be >= 1, got {half_width}")
        self.order = order
        self.half_width = half_width
        n = torch.arange(-half_width, half_width + 1, dtype=torch.float32)
        self.register_buffer("kernel", (n / n.square().sum()).view(1, 1, -1), persistent=False)

    def delta(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(-1, 1, x.shape[-1])
        padded = nn.functional.pad(flat, (self.half_width, self.half_width), mode="replicate")
        return nn.functional.conv1d(padded, self.kernel.to(x.dtype)).reshape(x.shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        parts = [x]
        for _ in range(self.order):
            parts.append(self.delta(parts[-1]))
        return torch.cat(parts, dim=-3)

    def extra_repr(self) -> str:
        return f"order={self.order}, half_width={self.half_width}"


def logmel_kwargs(feat_cfg: Any, sample_rate: int) -> dict[str, Any]:
    return {
        "sample_rate": int(sample_rate),
        "n_fft": int(feat_cfg.n_fft),
        "hop_length": int(feat_cfg.hop_length),
        "win_length": None if feat_cfg.win_length is None else int(feat_cfg.win_length),
        "n_mels": int(feat_cfg.n_mels),
        "fmin": float(feat_cfg.fmin),
        "fmax": None if feat_cfg.fmax is None else float(feat_cfg.fmax),
    }


def make_frontend(feat_cfg: Any, sample_rate: int, kind: str) -> nn.Module:
    """The torch front end for `kind` (logmel | mfcc): [B, T] waveforms -> [B, 1, F, T] features."""
    kwargs = logmel_kwargs(feat_cfg, sample_rate)
    if kind == "logmel":
        core: nn.Module = LogMel(**kwargs)
    elif kind == "mfcc":
        core = MFCC(n_mfcc=int(feat_cfg.n_mfcc), **kwargs)
    else:
        raise ValueError(f"data.features.kind '{kind}' has no torch front end (expected logmel or mfcc)")
    return nn.Sequential(core, AddChannel())


def feature_shape(feat_cfg: Any, kind: str, n_samples: int) -> tuple[int, ...]:
    """Shape of one item's features (no batch axis) for `n_samples`-long waveforms."""
    if kind == "handcrafted":
        return (HANDCRAFTED_DIM,)
    if kind in SMILE_KINDS:
        from ser.data.smile import dim

        return (dim(kind),)
    frames = 1 + n_samples // int(feat_cfg.hop_length)
    if kind == "logmel":
        return (1, int(feat_cfg.n_mels), frames)
    if kind == "mfcc":
        return (1, int(feat_cfg.n_mfcc), frames)
    raise ValueError(f"data.features.kind must be one of {KINDS}, got '{kind}'")


def librosa_features(wave: np.ndarray, feat_cfg: Any, sample_rate: int, kind: str) -> np.ndarray:
    """One item's [1, F, T] log-mel/MFCC computed by librosa: the reference the torch front end matches."""
    import librosa

    kw = logmel_kwargs(feat_cfg, sample_rate)
    mel = librosa.feature.melspectrogram(
        y=np.asarray(wave, dtype=np.float32),
        sr=kw["sample_rate"],
        n_fft=kw["n_fft"],
        hop_length=kw["hop_length"],
        win_length=kw["win_length"],
        n_mels=kw["n_mels"],
        fmin=kw["fmin"],
        fmax=kw["fmax"],
        power=2.0,
    )
    db = librosa.power_to_db(mel, top_db=80.0)
    if kind == "mfcc":
        db = librosa.feature.mfcc(S=db, n_mfcc=int(feat_cfg.n_mfcc))
    elif kind != "logmel":
        raise ValueError(f"librosa_features computes logmel or mfcc, got '{kind}'")
    return db[np.newaxis].astype(np.float32)


def handcrafted_features(wave: np.ndarray, sr: int) -> np.ndarray:
    """The 193-value vector: time-means of MFCC(40), chroma_stft(12), mel(128), contrast(7), tonnetz(6).

    librosa defaults throughout (n_fft 2048), chroma and contrast from |STFT|, tonnetz from the harmonic
    part, as in the earlier projects. Computed on the fixed-length (cropped/padded) waveform.
    """
    import librosa

    y = np.asarray(wave, dtype=np.float32)
    stft = np.abs(librosa.stft(y))
    with warnings.catch_warnings():
        # tonnetz's CQT warns per octave on short clips ("n_fft=... is too large"): expected, not news.
        warnings.filterwarnings("ignore", message="n_fft=.* is too large", category=UserWarning)
        parts = [
            librosa.feature.mfcc(y=y, sr=sr, n_mfcc=40),
            librosa.feature.chroma_stft(S=stft, sr=sr),
            librosa.feature.melspectrogram(y=y, sr=sr),
            librosa.feature.spectral_contrast(S=stft, sr=sr),
            librosa.feature.tonnetz(y=librosa.effects.harmonic(y), sr=sr),
        ]
    vec = np.concatenate([p.mean(axis=1) for p in parts]).astype(np.float32)
    # Silent stretches give NaN chroma/tonnetz (0/0); a defined 0 beats a NaN that poisons a batch.
    return np.nan_to_num(vec, nan=0.0, posinf=0.0, neginf=0.0)
