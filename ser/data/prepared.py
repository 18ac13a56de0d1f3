"""Corpus -> speaker folds -> cached features, once per run: `prepare_data` does the expensive,
fold-independent work (scan corpora, decode audio, compute features through the on-disk cache) and returns
`PreparedData`, which every fold of a run and every trial of a sweep reuses (`ser.data.datamodule` slices
it per fold). Kept apart from the Lightning data module so that a sweep's driver, which prepares the data
and hands it to the trials, never imports Lightning (seconds of start-up on a small CPU)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from omegaconf import DictConfig

from ser.config import ConfigError
from ser.data.dataset import LabelledDataset, build_dataset
from ser.data.features import VECTOR_KINDS
from ser.data.folds import Fold, choose_held_out, group_folds, session_groups, speaker_folds
from ser.data.normalize import standardize_groups
from ser.data.types import CorpusError, Skipped
from ser.data.views import Layout, needs_views

WAVE_AUGMENTS = ("noise_p", "shift_p", "speed_p", "pitch_p")


def resolve_feature_kind(cfg: DictConfig) -> str:
    """`data.features.kind`, with `auto` taken from the model family's input."""
    from ser.config.schema import MODEL_INPUTS

    wanted = MODEL_INPUTS[cfg.model.name]
    kind = cfg.data.features.kind
    if wanted == "pretrained":  # the encoder's own front end: cached states, or waveforms to fine-tune on
        if kind != "auto":
            raise ConfigError(
                f"invalid config key 'data.features.kind': model '{cfg.model.name}' takes audio through its "
                f"encoder's own feature extractor, not '{kind}' (use data.features.kind=auto)"
            )
        return "embeddings" if cfg.model.ssl_mode == "frozen" else "waveform"
    if kind == "auto":
        return "handcrafted" if wanted == "vector" else "logmel"
    if (kind in VECTOR_KINDS) != (wanted == "vector"):
        need = (
            "a vector per clip (handcrafted, egemaps, gemaps or compare)"
            if wanted == "vector"
            else "logmel or mfcc (a spectrogram)"
        )
        raise ConfigError(
            f"invalid config key 'data.features.kind': model '{cfg.model.name}' takes {need}, got '{kind}'"
            " (use data.features.kind=auto)"
        )
    return kind


def uses_wave_augment(cfg: DictConfig) -> bool:
    """Waveform augmentations change features, so the fold must be served as waveforms."""
    return any(float(cfg.data.augment[k]) > 0 for k in WAVE_AUGMENTS)


def serves_waveforms(cfg: DictConfig, kind: str) -> bool:
    """Rows are waveforms, featurised on the device: for waveform augmentation, or a fine-tuned encoder."""
    return uses_wave_augment(cfg) or kind == "waveform"


@dataclass
class PreparedData:
    """Everything fold-independent: rows, labels, speakers and the (memory-mapped) array."""

    labels: list[str]
    # logmel | mfcc | handcrafted | egemaps | gemaps | compare (openSMILE) | embeddings (a frozen encoder's
    # states) | waveform (fine-tuning)
    kind: str
    waveform_mode: bool  # rows are waveforms, featurised on the device by the model's frontend
    x: np.ndarray  # [N, 1, F, T] features, [N, D] vectors, or [N, samples] waveforms
    y: np.ndarray  # [N] int64 label indices
    speakers: list[str]
    utterance_ids: list[str]
    genders: dict[str, str | None]
    folds: list[Fold]
    skipped: list[Skipped] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    feature_seconds: float = 0.0
    from_cache: bool = False
    held_out: list[str] = field(default_factory=list)  # test speakers no fold sees (data.holdout)
    encoder: dict[str, Any] | None = None  # the ssl family's encoder (ser.data.embeddings.encoder_record)
    layout: Layout | None = None  # several views packed per row (fusion, the speaker adversary)

    @property
    def n_classes(self) -> int:
        return len(self.labels)


def prepare_data(
    cfg: DictConfig,
    progress: bool = True,
    dataset: LabelledDataset | None = None,
    make_folds: bool = True,
    encoder: dict[str, Any] | None = None,
) -> PreparedData:
    """Scan, decode and featurise once (cached on disk); compute the speaker folds (unless `make_folds` is
    False: a whole corpus scored as one test set needs none). `encoder`: a fine-tuned checkpoint's own
    encoder record, so scoring it does not need the pretrained folder it started from."""
    from ser.data.cache import load_features, load_waveforms

    kind = resolve_feature_kind(cfg)
    waveform_mode = serves_waveforms(cfg, kind)
    if waveform_mode and kind in VECTOR_KINDS:
        raise ConfigError(
            "invalid config key 'data.augment': waveform augmentation (noise/shift/speed/pitch) needs a "
            f"spectrogram feature; the {kind} vector is computed once and cannot be augmented"
        )
    if cfg.data.features.normalize == "speaker" and waveform_mode:
        raise ConfigError(
            "invalid config key 'data.features.normalize': speaker normalisation standardises cached "
            "features per speaker, so it cannot be combined with waveform augmentation "
            "(noise/shift/speed/pitch)"
        )
    if kind != "waveform" or encoder is None:
        encoder = None
    if kind in ("embeddings", "waveform") and encoder is None:  # before any audio is read: fail at once
        from ser.data.embeddings import encoder_record, resolve

        source = resolve(cfg)
        encoder = encoder_record(source)
    data = dataset or build_dataset(cfg.data, check_audio=False, progress=progress)
    fixed: list[Fold] | None = None
    if cfg.data.get("partition") and make_folds:  # folds from a file: only the utterances it lists are used
        from ser.data.partition import partition_folds, resolve_partition

        partition = resolve_partition(str(cfg.data.partition), data.utterances)
        fixed, used, left_out = partition_folds(partition, data.utterances)
        data = replace(data, utterances=used, skipped=[*data.skipped, *left_out])
    cache_dir = cfg.data.features.cache_dir
    if kind == "embeddings":
        from ser.data.embeddings import load_embeddings

        loaded = load_embeddings(data.utterances, cfg, source, progress=progress)
        array, seconds = loaded.x, loaded.compute_seconds
    elif waveform_mode:
        loaded = load_waveforms(data.utterances, cfg.data.audio, cache_dir=cache_dir, progress=progress)
        array = loaded.waves
        seconds = 0.0
    else:
        loaded = load_features(
            data.utterances, cfg.data.audio, cfg.data.features, kind, cache_dir=cache_dir, progress=progress
        )
        array = loaded.x
        seconds = loaded.compute_seconds
    by_id = {u.id: u for u in data.utterances}
    rows = [by_id[i] for i in loaded.ids]
    if not rows:
        raise CorpusError("no utterance could be loaded; see the skipped files above")
    label_index = {label: i for i, label in enumerate(data.labels)}
    speakers = [u.speaker for u in rows]
    if cfg.data.features.normalize == "speaker":  # fold-independent (no labels): once, for every split
        array = standardize_groups(array, speakers).numpy()
    layout = None
    if needs_views(cfg):  # fusion's second view and/or the adversary's speaker column, packed per row
        from ser.data.views import pack

        array, layout, view_seconds = pack(cfg, array, rows, speakers, progress=progress)
        seconds += view_seconds
    genders = {u.speaker: u.gender for u in rows}
    unique = sorted(set(speakers))
    hold = cfg.data.holdout
    held_out = choose_held_out(unique, genders, list(hold.speakers), float(hold.fraction), int(hold.seed))
    if held_out and (fixed is not None or cfg.data.get("fold_by", "speaker") == "session"):
        raise ConfigError(
            "invalid config key 'data.holdout': held-out speakers work with computed speaker folds, not with "
            "data.partition or data.fold_by=session"
        )
    folds = fixed if fixed is not None else compute_folds(cfg, rows, genders, held_out) if make_folds else []
    return PreparedData(
        labels=list(data.labels),
        kind=kind,
        waveform_mode=waveform_mode,
        x=array,
        y=np.array([label_index[u.label] for u in rows], dtype=np.int64),
        speakers=speakers,
        utterance_ids=[u.id for u in rows],
        genders=genders,
        folds=folds,
        skipped=list(data.skipped) + list(loaded.skipped),
        warnings=list(data.warnings),
        feature_seconds=seconds,
        from_cache=loaded.from_cache,
        held_out=held_out,
        encoder=encoder,
        layout=layout,
    )


def compute_folds(
    cfg: DictConfig, rows: list, genders: dict[str, str | None], held_out: list[str] | None = None
) -> list[Fold]:
    """Speaker folds (train/validation folds of the others when speakers are held out), or session folds
    (`data.fold_by: session`); a count the data cannot make is a ConfigError naming `data.folds`."""
    try:
        if cfg.data.get("fold_by", "speaker") == "session":
            return group_folds(session_groups(rows), cfg.data.folds, cfg.data.val_folds, cfg.data.fold_seed)
        unique = sorted({u.speaker for u in rows})
        return speaker_folds(
            unique, cfg.data.folds, cfg.data.val_folds, cfg.data.fold_seed, genders, held_out or ()
        )
    except ValueError as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"invalid config key 'data.folds': {exc}") from None
