"""`Scorer`: a checkpoint's whole pipeline (audio normalisation, features, normaliser, network) applied to
fixed-length windows, and `score_wave`, which slides it over a whole recording.

`ser predict`, `ser live` and the web UI are built on these two pieces only, so they score exactly as
training validated.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ser.config.errors import UserError
from ser.data.features import SMILE_KINDS
from ser.data.normalize import SpeakerStats
from ser.data.views import VIEW, Layout
from ser.inference.checkpoint import CheckpointError, LoadedCheckpoint, read_checkpoint, restore_classifier
from ser.inference.packed import PackedStats, encoder_view, packed_rows

MAX_WINDOWS = 20_000  # per file: an hour at a 0.2 s hop


class WindowError(UserError, ValueError):
    """--window/--hop that cannot slide over the audio (below a sample, or too many windows)."""


@dataclass
class Scorer:
    """Fixed-length windows [B, samples] -> probabilities [B, n_classes]."""

    model: torch.nn.Module
    checkpoint: LoadedCheckpoint
    featurize: torch.nn.Module | None  # waveform -> cached-style features; None when the model does it

    @property
    def labels(self) -> list[str]:
        return self.checkpoint.labels

    @property
    def sample_rate(self) -> int:
        return int(self.checkpoint.cfg.data.audio.sample_rate)

    @property
    def window_samples(self) -> int:
        return int(round(float(self.checkpoint.cfg.data.audio.duration) * self.sample_rate))

    @property
    def audio_normalize(self) -> str:
        return str(self.checkpoint.cfg.data.audio.normalize)

    @property
    def speaker_normalized(self) -> bool:
        """Trained with `data.features.normalize=speaker`: inputs need their speaker's statistics."""
        return str(self.checkpoint.cfg.data.features.normalize) == "speaker"

    layout: Layout | None = None  # fusion / adversary checkpoints: the packed row the network reads
    view: Callable[[np.ndarray], torch.Tensor] | None = None  # windows -> the row's second view

    @torch.no_grad()
    def features(self, windows: np.ndarray) -> torch.Tensor:
        """What the model's pipeline receives for these windows (cached-style features or waveforms; for
        a fusion / adversary model, the packed row of those and the second view)."""
        windows = np.asarray(windows, dtype=np.float32)
        kind = self.checkpoint.kind
        if kind == "handcrafted" or kind in SMILE_KINDS:
            main = vector_features(kind, windows, self.sample_rate)
        else:
            x = torch.from_numpy(windows)
            main = self.featurize(x) if self.featurize is not None else x
        if self.layout is None:
            return main
        return packed_rows(
            self.checkpoint.path, self.layout, self.layout.parts[0][0], main, self.view, windows
        )

    def new_stats(self) -> SpeakerStats | PackedStats:
        """Empty statistics of one speaker, per part of the row for a packed model."""
        return SpeakerStats() if self.layout is None else PackedStats(self.layout)

    def speaker_stats(
        self, windows: Sequence[np.ndarray], stats: SpeakerStats | PackedStats | None = None
    ) -> SpeakerStats | PackedStats:
        """Statistics of one speaker from their windows (fixed-length, normalised like training audio),
        in batches of 64; added to `stats` when given (several files of one speaker)."""
        stats = self.new_stats() if stats is None else stats
        for i in range(0, len(windows), 64):
            stats.update(self.features(np.stack(windows[i : i + 64])))
        return stats

    @torch.no_grad()
    def probabilities(
        self, windows: np.ndarray, speaker: SpeakerStats | PackedStats | None = None
    ) -> np.ndarray:
        """Windows must already be normalised like training audio (`audio_normalize`).

        For a speaker-normalised model, `speaker` holds the speaker's statistics; without it these windows
        alone stand for the speaker.
        """
        return self.score_features(self.features(windows), speaker)

    @torch.no_grad()
    def score_features(
        self, x: torch.Tensor, speaker: SpeakerStats | PackedStats | None = None
    ) -> np.ndarray:
        """`probabilities` from features already computed by `features` (a live stream or a file uses them
        for the speaker's statistics too, so the front end, an encoder included, runs once per window)."""
        if self.speaker_normalized:
            x = (speaker or self.new_stats().update(x)).standardize(x)
        logits = self.model(x)
        probs = torch.softmax(logits.float(), dim=-1).numpy()
        if not np.isfinite(probs).all():  # NaN weights or an input the features overflowed on
            raise CheckpointError(
                f"{self.checkpoint.path}: the model gave non-finite probabilities (NaN/inf) for this "
                "input; its weights or the audio hold values it cannot score"
            )
        return probs


def load_scorer(checkpoint_path: str | Path) -> Scorer:
    ckpt = read_checkpoint(checkpoint_path)
    model = restore_classifier(ckpt)  # checks the layout record too
    featurize = None
    if not ckpt.waveform_mode and ckpt.kind in ("logmel", "mfcc"):
        from ser.data.features import make_frontend

        featurize = make_frontend(
            ckpt.cfg.data.features, int(ckpt.cfg.data.audio.sample_rate), ckpt.kind
        ).eval()
    elif ckpt.kind == "embeddings":
        featurize = frozen_encoder(ckpt)
    layout, view = None, None
    if ckpt.info.get("layout") is not None:  # fusion / adversary: packed rows (ser.inference.packed)
        layout = Layout.from_record(ckpt.info["layout"])
        if layout.has(VIEW):
            view = view_function(ckpt)
    return Scorer(model=model, checkpoint=ckpt, featurize=featurize, layout=layout, view=view)


def vector_features(kind: str, windows: np.ndarray, sample_rate: int) -> torch.Tensor:
    """The 193 librosa statistics or an openSMILE set of each window, as the feature cache holds them."""
    if kind == "handcrafted":
        from ser.data.features import handcrafted_features

        return torch.from_numpy(np.stack([handcrafted_features(w, sample_rate) for w in windows]))
    from ser.data.smile import extractor, smile_vector

    smile = extractor(kind)
    return torch.from_numpy(np.stack([smile_vector(smile, w, sample_rate) for w in windows]))


def view_function(ckpt: LoadedCheckpoint) -> Callable[[np.ndarray], torch.Tensor]:
    """Windows -> the second view a fusion checkpoint was trained with (model.fusion_view)."""
    view = str(ckpt.cfg.model.fusion_view)
    if view == "encoder":
        return encoder_view(ckpt)
    rate = int(ckpt.cfg.data.audio.sample_rate)
    return lambda windows: vector_features(view, np.asarray(windows, dtype=np.float32), rate)


def frozen_encoder(ckpt: LoadedCheckpoint) -> torch.nn.Module:
    """A frozen-encoder head's checkpoint holds no encoder weights: the encoder is loaded from where the
    config says (model.encoder) and must be the one the head was trained on."""
    from ser.config import ConfigError
    from ser.data.embeddings import frozen_featurizer

    n_samples = int(round(float(ckpt.cfg.data.audio.duration) * int(ckpt.cfg.data.audio.sample_rate)))
    try:
        return frozen_featurizer(ckpt.cfg, ckpt.info.get("encoder"), n_samples)
    except ConfigError as exc:
        raise CheckpointError(f"{ckpt.path}: its frozen-encoder head needs its encoder: {exc}") from None


def window_starts(n_samples: int, window: int, hop: int) -> list[int]:
    """Window starts covering the whole signal; the last window ends at the signal's end."""
    if n_samples <= window:
        return [0]
    starts = list(range(0, n_samples - window + 1, hop))
    if starts[-1] + window < n_samples:
        starts.append(n_samples - window)
    return starts


def windows_of(
    scorer: Scorer, wave: np.ndarray, window: float | None = None, hop: float | None = None
) -> tuple[list[int], int, list[np.ndarray]]:
    """(window starts, window length in samples, the windows cropped/padded to the training clip)."""
    from ser.data.audio import fix_length

    sr = scorer.sample_rate
    win = int(round(window * sr)) if window else scorer.window_samples
    step = int(round(hop * sr)) if hop else max(win // 2, 1)
    if win <= 0 or step <= 0:
        raise WindowError(f"window ({window} s) and hop ({hop} s) must each be at least one sample")
    count = 1 if len(wave) <= win else (len(wave) - win) // step + 2
    if count > MAX_WINDOWS:  # --hop 0.0001 on a 30 s clip: 300,000 windows, minutes of silent work
        raise WindowError(
            f"a hop of {step / sr:g} s over {len(wave) / sr:.1f} s of audio gives {count} windows; at most "
            f"{MAX_WINDOWS} are scored per file: use a larger --hop"
        )
    starts = window_starts(len(wave), win, step)
    crop = str(scorer.checkpoint.cfg.data.audio.crop)
    return starts, win, [fix_length(wave[s : s + win], scorer.window_samples, crop=crop) for s in starts]


def score_wave(
    scorer: Scorer,
    wave: np.ndarray,
    window: float | None = None,
    hop: float | None = None,
    speaker: SpeakerStats | PackedStats | None = None,
) -> dict[str, Any]:
    """Per-window and overall (mean of window probabilities) predictions for one waveform.

    A speaker-normalised model standardises with `speaker`, else with this recording's own statistics.
    """
    sr = scorer.sample_rate
    starts, win, chunks = windows_of(scorer, wave, window, hop)
    batches: Iterable[torch.Tensor] = (
        scorer.features(np.stack(chunks[i : i + 64])) for i in range(0, len(chunks), 64)
    )
    if scorer.speaker_normalized and speaker is None:
        # this recording stands for its speaker: its features are kept for the second pass rather than
        # computed again (an encoder view would run twice); the windows themselves are held already
        batches = list(batches)
        speaker = scorer.new_stats()
        for x in batches:
            speaker.update(x)
    probs = np.concatenate([scorer.score_features(x, speaker) for x in batches])
    overall = probs.mean(axis=0)
    labels = scorer.labels
    windows = [
        {
            "start": round(s / sr, 3),
            "end": round(min(s + win, len(wave)) / sr, 3),
            "label": labels[int(p.argmax())],
            "probabilities": {label: round(float(v), 4) for label, v in zip(labels, p)},
        }
        for s, p in zip(starts, probs)
    ]
    return {
        "label": labels[int(overall.argmax())],
        "probabilities": {label: round(float(v), 4) for label, v in zip(labels, overall)},
        "duration": round(len(wave) / sr, 3),
        "windows": windows,
    }
