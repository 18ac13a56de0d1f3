"""Config -> the whole classifier pipeline: feature front end, normaliser, delta channels, train-only
augmentation and the network, inside one `EmotionClassifier`.

Training builds it with the training split's statistics; checkpoint loading (`ser evaluate`, `predict`,
`live`, `serve`) rebuilds the same thing from the config stored in the checkpoint, so inference never
imports training code.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Union

import torch
from omegaconf import DictConfig, OmegaConf

from ser.config import ConfigError
from ser.data.features import Deltas
from ser.data.normalize import FeatureNormalizer
from ser.data.views import SPECTROGRAM, Layout
from ser.models.dropout import seed_dropout
from ser.models.registry import build_model

# a network given by the caller: a module, or a factory of (feature shape, number of classes)
NetSource = Union[torch.nn.Module, Callable[[tuple, int], torch.nn.Module]]


class ToFloat(torch.nn.Module):
    """Rows stored in half precision (a frozen encoder's cached states) -> float32."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.float()


def feature_frontend(cfg: DictConfig, kind: str) -> torch.nn.Module:
    """Waveform [B, T] -> features [B, 1, F, T'] with the same torch ops the cache used; the identity for
    `waveform` (a fine-tuned encoder's own front end is inside the network)."""
    from ser.data.features import make_frontend

    if kind == "waveform":
        return torch.nn.Identity()
    return make_frontend(cfg.data.features, cfg.data.audio.sample_rate, kind)


def feature_bin_freqs(cfg: DictConfig, kind: str) -> torch.Tensor | None:
    """Centre frequencies (Hz) of the log-mel bins, for the frequency warp; MFCCs have no frequency axis
    to warp, so asking for the warp with them is a config error."""
    if float(cfg.data.augment.freq_warp_p) <= 0:
        return None
    if kind != "logmel":
        raise ConfigError(
            "invalid config key 'data.augment.freq_warp_p': the frequency warp needs log-mel features, "
            f"not {kind}"
        )
    import librosa

    feat = cfg.data.features
    fmax = float(feat.fmax) if feat.fmax is not None else cfg.data.audio.sample_rate / 2.0
    centres = librosa.mel_frequencies(n_mels=int(feat.n_mels) + 2, fmin=float(feat.fmin), fmax=fmax)[1:-1]
    return torch.as_tensor(centres, dtype=torch.float32)


def build_classifier(
    cfg: DictConfig,
    row_shape: tuple[int, ...],
    labels: Sequence[str],
    kind: str,
    waveform_mode: bool,
    train_rows: torch.Tensor | None = None,
    class_weights: torch.Tensor | None = None,
    seed: int | None = None,
    encoder: dict | None = None,
    layout: Layout | None = None,
    net: NetSource | None = None,
):
    """Network + frontend (featurise if rows are waveforms, then normalise) + train-only augmentation.

    `train_rows` (the TRAIN split only) fits `normalize=train` statistics; predict/evaluate pass None and
    load the fitted statistics from the checkpoint instead. `encoder` describes a pretrained encoder for
    the ssl family (ser.data.embeddings.encoder_record). `layout`: rows pack several views
    (ser.data.views: fusion, the speaker adversary); the spectrogram pipeline below is built for the
    spectrogram part and wrapped by ser.models.multiview. `net` replaces the registry's network with the
    caller's own (an nn.Module, or a function of (feature_shape, n_classes) that builds one): the Python
    API's way to train a user's architecture with everything else unchanged.
    """
    from ser.data.augment import build_mixup, build_spec_augment, build_wave_augment
    from ser.models.classifier import EmotionClassifier

    if layout is not None and not layout.has(SPECTROGRAM):  # svm / feature_mlp: the views as one vector
        layout = None
    stages: list[torch.nn.Module] = []
    if kind == "embeddings":  # float16 cached states: normalise and augment in float32
        stages.append(ToFloat())
    wave_augment = None
    generator = torch.Generator().manual_seed(int(cfg.trainer.seed) if seed is None else int(seed))
    if waveform_mode:
        featurize = feature_frontend(cfg, kind)
        stages.append(featurize)
        wave_augment = build_wave_augment(cfg.data.augment, cfg.data.audio.sample_rate, generator=generator)
        with torch.no_grad():
            feature_shape = tuple(featurize(torch.zeros(1, row_shape[0])).shape[1:])
    else:
        feature_shape = tuple(layout.shape(SPECTROGRAM) if layout is not None else row_shape)
    normalizer = FeatureNormalizer(cfg.data.features.normalize, feature_shape)
    packed_rows = train_rows
    if train_rows is not None and layout is not None:
        train_rows = layout.split(train_rows)[SPECTROGRAM]
    if train_rows is not None and cfg.data.features.normalize == "train":
        if waveform_mode:
            with torch.no_grad():
                train_rows = torch.cat([stages[0](chunk) for chunk in train_rows.split(256)])
        normalizer.fit(train_rows)
    stages.append(normalizer)
    deltas = int(cfg.data.features.deltas)
    if deltas != 0:
        if len(feature_shape) != 3:
            raise ConfigError(
                "invalid config key 'data.features.deltas': time derivatives need a spectrogram feature "
                f"(logmel or mfcc), not {kind}"
            )
        stages.append(Deltas(deltas))
        c, f, t = feature_shape
        feature_shape = (c * (1 + deltas), f, t)
    extra = {} if encoder is None else {"encoder": encoder}
    if net is None:
        net = build_model(cfg.model, feature_shape, len(labels), **extra)
    elif not isinstance(net, torch.nn.Module):
        net = net(feature_shape, len(labels))
        if not isinstance(net, torch.nn.Module):
            raise TypeError(f"the network factory returned {type(net).__name__}, not a torch.nn.Module")
    spec_augment = None
    if len(feature_shape) == 3:
        spec_augment = build_spec_augment(
            cfg.data.augment, generator=generator, bin_freqs=feature_bin_freqs(cfg, kind)
        )
    frontend = torch.nn.Sequential(*stages)
    if layout is not None:
        from ser.models.multiview import wrap

        frontend, spec_augment, net = wrap(
            cfg, layout, feature_shape, frontend, spec_augment, net, len(labels), packed_rows
        )
    net = seed_dropout(net, generator)
    if cfg.trainer.channels_last and len(feature_shape) == 3:
        net = net.to(memory_format=torch.channels_last)
    if cfg.trainer.compile:
        net = torch.compile(net)
    model = EmotionClassifier(
        net=net,
        n_classes=len(labels),
        optim=OmegaConf.to_container(cfg.optim),
        labels=list(labels),
        class_weights=class_weights,
        frontend=frontend,
        spec_augment=spec_augment,
        wave_augment=wave_augment,
        mixup=build_mixup(cfg.data.augment, generator=generator),
        generator=generator,
    )
    return model, feature_shape
