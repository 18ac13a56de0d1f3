"""The encoders' own feature extractors as batched torch modules: waveforms [B, samples] in, the encoder's
input out, on any device, inside the network when it is fine-tuned.

Each reproduces the Hugging Face feature extractor its encoder was trained with, reading every setting
from the encoder's `preprocessor_config.json` (through the extractor class itself, so defaults match);
tests/test_ssl_encoders.py checks each against the extractor's own output:

- wav2vec2, HuBERT, WavLM, data2vec-audio: the waveform, standardised per utterance when `do_normalize`.
- Whisper: its log-mel (Hann STFT, Slaney mels, log10, an 8-decade floor below the peak, (x + 4) / 4), for
  the clip itself rather than a 30-s window; the encoder's positions are cut to match (stack.py).
- AST: Kaldi filter banks (25 ms Hann frames every 10 ms, DC removal, pre-emphasis 0.97, 128 mels),
  padded or cut to the model's `max_length` frames, standardised with the AudioSet mean and sd.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from ser.data.encoders.source import WAV2VEC2_LIKE


def feature_extractor(model_type: str, preprocessor: dict[str, Any]):
    """The transformers feature extractor the encoder was saved with, built from its settings."""
    import warnings

    import transformers

    name = {"whisper": "WhisperFeatureExtractor", "audio-spectrogram-transformer": "ASTFeatureExtractor"}
    labels = ("feature_extractor_type", "processor_class")
    settings = {k: v for k, v in preprocessor.items() if k not in labels}
    with warnings.catch_warnings():  # AST's 128 Kaldi mels on 257 bins leave the lowest filter empty
        warnings.filterwarnings("ignore", message="At least one mel filter has all zero values")
        return getattr(transformers, name.get(model_type, "Wav2Vec2FeatureExtractor"))(**settings)


class WaveStandardize(nn.Module):
    """[B, T] -> [B, T]: zero mean, unit variance per utterance (Wav2Vec2FeatureExtractor's do_normalize)."""

    def __init__(self, enabled: bool) -> None:
        super().__init__()
        self.enabled = bool(enabled)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        wave = wave.float()
        if not self.enabled:
            return wave
        mean = wave.mean(dim=-1, keepdim=True)
        var = wave.var(dim=-1, unbiased=False, keepdim=True)
        return (wave - mean) / torch.sqrt(var + 1e-7)

    def extra_repr(self) -> str:
        return f"enabled={self.enabled}"


class WhisperLogMel(nn.Module):
    """[B, T] -> [B, n_mels, frames], frames = T // hop rounded up to even (the encoder's stride-2 conv)."""

    def __init__(self, mel_filters: np.ndarray, n_fft: int, hop_length: int) -> None:
        super().__init__()
        self.n_fft, self.hop_length = int(n_fft), int(hop_length)
        self.register_buffer(
            "mel_filters", torch.as_tensor(mel_filters, dtype=torch.float32).T.contiguous(), persistent=False
        )
        self.register_buffer("window", torch.hann_window(self.n_fft), persistent=False)

    def frames(self, n_samples: int) -> int:
        n = n_samples // self.hop_length
        return n + n % 2

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        n = self.frames(wave.shape[-1])
        # zeros after the clip, as the extractor's padding to 30 s gives the last frames
        padded = nn.functional.pad(wave.float(), (0, self.n_fft + self.hop_length))
        stft = torch.stft(padded, self.n_fft, self.hop_length, window=self.window, return_complex=True)
        power = stft[..., :n].abs().square()
        log_spec = torch.matmul(self.mel_filters, power).clamp_min(1e-10).log10()
        log_spec = torch.maximum(log_spec, log_spec.amax(dim=(-2, -1), keepdim=True) - 8.0)
        return (log_spec + 4.0) / 4.0


class KaldiFbank(nn.Module):
    """[B, T] -> [B, max_length, n_mels]: ASTFeatureExtractor's filter banks, padded/cut, standardised."""

    FRAME, HOP, FFT, PREEMPHASIS, FLOOR = 400, 160, 512, 0.97, 1.192092955078125e-07

    def __init__(
        self, mel_filters: np.ndarray, window: np.ndarray, max_length: int, mean: float | None, std: float
    ) -> None:
        super().__init__()
        self.max_length, self.mean, self.std = int(max_length), mean, float(std)
        as_buffer = lambda a: torch.as_tensor(a, dtype=torch.float32)  # noqa: E731
        self.register_buffer("mel_filters", as_buffer(mel_filters), persistent=False)
        self.register_buffer("window", as_buffer(window), persistent=False)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        wave = wave.float()
        if wave.shape[-1] < self.FRAME:
            wave = nn.functional.pad(wave, (0, self.FRAME - wave.shape[-1]))
        frames = wave.unfold(-1, self.FRAME, self.HOP)  # [B, F, 400]: Kaldi's snip_edges framing
        frames = frames - frames.mean(dim=-1, keepdim=True)
        first = frames[..., :1] * (1.0 - self.PREEMPHASIS)
        frames = torch.cat([first, frames[..., 1:] - self.PREEMPHASIS * frames[..., :-1]], dim=-1)
        power = torch.fft.rfft(frames * self.window, n=self.FFT).abs().square()
        fbank = torch.matmul(power, self.mel_filters).clamp_min(self.FLOOR).log()
        missing = self.max_length - fbank.shape[1]
        fbank = nn.functional.pad(fbank, (0, 0, 0, missing)) if missing > 0 else fbank[:, : self.max_length]
        if self.mean is None:
            return fbank
        return (fbank - self.mean) / (self.std * 2.0)


def kaldi_filters(num_mel_bins: int, sampling_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """(mel filters [257, n_mels], window [400]) as ASTFeatureExtractor builds them without torchaudio."""
    import warnings

    from transformers.audio_utils import mel_filter_bank, window_function

    with warnings.catch_warnings():  # as in feature_extractor()
        warnings.filterwarnings("ignore", message="At least one mel filter has all zero values")
        filters = mel_filter_bank(
            num_frequency_bins=257,
            num_mel_filters=num_mel_bins,
            min_frequency=20,
            max_frequency=sampling_rate // 2,
            sampling_rate=sampling_rate,
            norm=None,
            mel_scale="kaldi",
            triangularize_in_mel_space=True,
        )
    return filters, window_function(400, "hann", periodic=False)


def make_preprocessor(model_type: str, preprocessor: dict[str, Any]) -> nn.Module:
    """The torch front end for `model_type`, with the settings of its saved feature extractor."""
    extractor = feature_extractor(model_type, preprocessor)
    if model_type in WAV2VEC2_LIKE:
        return WaveStandardize(bool(getattr(extractor, "do_normalize", True)))
    if model_type == "whisper":
        return WhisperLogMel(extractor.mel_filters, extractor.n_fft, extractor.hop_length)
    if model_type == "audio-spectrogram-transformer":
        filters, window = kaldi_filters(int(extractor.num_mel_bins), int(extractor.sampling_rate))
        mean = float(extractor.mean) if extractor.do_normalize else None
        return KaldiFbank(filters, window, int(extractor.max_length), mean, float(extractor.std))
    raise ValueError(f"no front end for encoder type {model_type!r}")
