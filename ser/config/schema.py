"""The config schema: one tree of dataclasses for every `ser` command, and the values each key allows.

YAML presets (top-level configs/, packaged as ser/config/presets) and sweep files hold only differences
from these defaults; `load.py` merges them and `validate.py` checks what the types cannot (ranges,
enumerations). Nothing here imports torch or lightning, so a config loads (and `ser --help` runs)
without them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from ser.config.errors import UserError


class ConfigError(UserError, ValueError):
    """A configuration file or override is invalid; the message names the key."""


@dataclass
class CorpusSpec:
    """One corpus to read: its adapter name, its root folder and adapter options."""

    name: str = "synthetic"  # one of CHOICES["data.corpus"]
    root: Optional[str] = None  # not needed for synthetic; the manifest file itself for `manifest`
    speaker_regex: Optional[str] = None  # folder layout: regex with a group named `speaker`
    label_map: Dict[str, str] = field(default_factory=dict)  # corpus label -> harmonised label
    subset: Optional[str] = None  # iemocap: improvised | scripted (None: both)


@dataclass
class SyntheticConfig:
    """The procedurally generated corpus: the embedded default and the tests' data."""

    speakers: int = 8
    per_label: int = 8  # utterances per (speaker, label)
    labels: List[str] = field(
        default_factory=lambda: ["neutral", "happy", "sad", "angry", "fearful", "disgust"]
    )
    duration: float = 2.0  # mean seconds per utterance (tempo changes it per class)
    sample_rate: int = 16000
    seed: int = 0
    variability: float = 1.0  # scale of per-utterance randomness: higher = classes overlap more


@dataclass
class AudioConfig:
    """How a file becomes a fixed-length waveform."""

    sample_rate: int = 16000
    duration: float = 3.0  # seconds after crop/pad
    crop: str = "center"  # center | start
    normalize: str = "peak"  # none | peak | rms


@dataclass
class FeatureConfig:
    """Features computed once per (files, settings) and cached on disk."""

    kind: str = "auto"  # auto (from the model) | logmel | mfcc | handcrafted
    n_mels: int = 64
    n_fft: int = 512
    hop_length: int = 320  # 20 ms frames at 16 kHz: half the compute of 10 ms; the tuned configs use it
    win_length: Optional[int] = None
    fmin: float = 0.0
    fmax: Optional[float] = None
    n_mfcc: int = 40
    normalize: str = "utterance"  # none | utterance | train (train-split statistics) | speaker (per speaker)
    deltas: int = 0  # 1: add delta channels, 2: delta and delta-delta (computed on the device, not cached)
    cache_dir: Optional[str] = None  # default: $SER_CACHE or ~/.cache/ser


@dataclass
class AugmentConfig:
    """Train-only augmentation; every transform is off unless its probability is > 0."""

    specaugment_p: float = 0.0
    freq_masks: int = 2
    freq_width: int = 8
    time_masks: int = 2
    time_width: int = 20
    noise_p: float = 0.0
    snr_db_min: float = 10.0
    snr_db_max: float = 30.0
    shift_p: float = 0.0
    shift_max: float = 0.2  # seconds
    speed_p: float = 0.0
    speed_min: float = 0.9
    speed_max: float = 1.1
    pitch_p: float = 0.0
    pitch_semitones: float = 2.0
    mixup_alpha: float = 0.0  # > 0: mix training batches, lam ~ Beta(alpha, alpha) (0.2-0.4 is usual)
    freq_warp_p: float = 0.0  # vocal tract length perturbation on the features (log-mel)
    freq_warp_max: float = 0.1  # frequency axis scaled by a factor in [1 - max, 1 + max]
    time_stretch_p: float = 0.0  # tempo perturbation on the features
    time_stretch_max: float = 0.1  # time axis resampled at a rate in [1 - max, 1 + max]


@dataclass
class HoldoutConfig:
    """Test speakers reserved from every fold, CV trial and sweep; scored once by `ser holdout`."""

    speakers: List[str] = field(default_factory=list)  # ids as the corpus names them ("01" or "ravdess:01")
    fraction: float = 0.0  # or this share of the speakers, gender-balanced, drawn with `seed`
    seed: int = 0


@dataclass
class DataConfig:
    """Which corpora, which fold, and how batches are made."""

    corpus: str = "synthetic"
    root: Optional[str] = None
    speaker_regex: Optional[str] = None
    subset: Optional[str] = None  # part of the corpus, where it has parts (iemocap: improvised | scripted)
    corpora: List[CorpusSpec] = field(default_factory=list)  # non-empty: merge these instead
    labels: Optional[List[str]] = None  # harmonised label set; None = union of what is found
    label_map: Dict[str, str] = field(default_factory=dict)  # applied to every corpus
    folds: int = 6  # number of speaker folds; 0 = leave one speaker out
    fold: str = "0"  # a fold index, or "all" for cross-validation
    val_folds: int = 1  # speaker folds held out for validation
    fold_seed: int = 0
    fold_by: str = "speaker"  # speaker | session (IEMOCAP: leave one session = two speakers out)
    partition: Optional[str] = None  # fixed folds from a file (YAML/JSON, an EmoBox folder) or "manifest"
    batch_size: int = 32
    num_workers: int = 0
    device_resident: bool = True  # keep the fold's tensors on the training device
    device_max_mb: float = 2048.0  # above this the DataModule falls back to DataLoaders
    class_weights: bool = False
    sampler: str = "shuffle"  # shuffle | balanced (draw training items with class-balanced probabilities)
    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig)
    audio: AudioConfig = field(default_factory=AudioConfig)
    features: FeatureConfig = field(default_factory=FeatureConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    holdout: HoldoutConfig = field(default_factory=HoldoutConfig)


@dataclass
class ModelConfig:
    """Knobs of every model family; each family reads the ones it documents."""

    name: str = "emotion_detector"
    depth: int = 3
    channels: int = 32
    channel_growth: float = 2.0  # channels multiply by this each block (1.0 = constant)
    max_channels: int = 256
    kernel_size: int = 3
    kernel_width: Optional[int] = None  # rectangular kernels: kernel_size x kernel_width
    batch_norm: bool = True
    pool: str = "max"  # max | avg
    time_pooling: str = "grid"  # CNN head input: grid (<= 4x4 average grid) | stats | attention (over time)
    activation: str = "relu"  # relu | elu | gelu | leaky_relu
    dropout: str = "classifier"  # none | conv | classifier | both
    conv_dropout: float = 0.1
    classifier_dropout: float = 0.3
    hidden: int = 128
    classifier_layers: int = 1
    lstm_hidden: int = 128
    lstm_layers: int = 1
    bidirectional: bool = True
    lstm_pooling: str = "attention"  # last | mean | attention
    conv1d: bool = False  # feature_mlp: Conv1D front end over the 193-value vector
    svm_c: float = 1.0
    svm_kernel: str = "rbf"
    svm_class_weight: str = "none"  # none | balanced (weights inversely proportional to counts)
    # > 1: that many members (seeds) per fold (fused on a GPU, else one by one), probabilities averaged
    ensemble: int = 1
    # ssl: a pretrained speech encoder from Hugging Face transformers (pip install -e ".[ssl]"); the head
    # reads hidden, classifier_layers, activation, dropout and classifier_dropout like the CNN heads do
    encoder: Optional[str] = None  # hub id (facebook/wav2vec2-base) or a local directory (hf download)
    encoder_revision: Optional[str] = None  # hub ids only: branch, tag or commit
    ssl_mode: str = "frozen"  # frozen (every layer's states cached once) | finetune (the encoder trains too)
    layer: str = "weighted"  # weighted (learned softmax over layers) | last | an index (0 = input embedding)
    ssl_pooling: str = "mean"  # over time: mean | stats (mean and sd) | attention (attentive statistics)
    ssl_cache_dtype: str = "float16"  # frozen: how cached states are stored (bench/ssl_encoders.py)
    freeze_feature_encoder: bool = True  # finetune: keep the convolutional front of the encoder fixed
    encoder_lr_scale: float = 1.0  # finetune: the encoder learns at optim.lr times this, the head at optim.lr
    layer_lr_decay: float = 1.0  # finetune: layer k of L learns at lr * decay ** (L + 1 - k); 1 = off
    gradient_checkpointing: bool = False  # finetune: recompute the encoder's activations in backward


@dataclass
class OptimConfig:
    """Loss, regularisation, optimizer and learning-rate schedule."""

    optimizer: str = "adam"  # adam | adamw | sgd
    lr: float = 1e-3
    beta1: float = 0.9
    beta2: float = 0.999
    momentum: float = 0.9
    weight_decay: float = 0.0  # decoupled (AdamW) or optimizer-level decay
    l2: float = 0.0  # explicit L2 penalty added to the loss (the earlier projects' "L2")
    schedule: str = "constant"  # constant | tristage | plateau | cosine
    warmup_frac: float = 0.1
    hold_frac: float = 0.4
    final_lr_scale: float = 0.01
    plateau_patience: int = 5
    plateau_factor: float = 0.5
    label_smoothing: float = 0.0
    grad_clip: float = 0.0  # 0 = off (clipping on by default slowed learning before)
    ema_decay: float = 0.0  # > 0: validate, select and save an exponential moving average of the weights


@dataclass
class TrainerConfig:
    """Lightning trainer settings and run outputs."""

    max_epochs: int = 30
    accelerator: str = "auto"
    devices: str = "auto"
    precision: str = "32-true"
    seed: int = 0
    deterministic: bool = False
    monitor: str = "val/uar"  # the selection metric: best checkpoint, early stopping, sweep ranking
    early_stopping_patience: int = 0  # 0 = off
    limit_train_batches: float = 1.0
    limit_val_batches: float = 1.0
    progress_bar: bool = True
    tensorboard: bool = False  # also log every fold's epochs as TensorBoard event files (fold_K/tensorboard/)
    compile: bool = False
    channels_last: bool = False
    # K models of one architecture (the folds of a CV trial or `ser fit data.fold=all`, a seed ensemble)
    # as one fused model (ser.training.fused): auto = where it is faster (a GPU), always = wherever the
    # family fuses, never = one Lightning loop per model; families that cannot fuse fall back with a note
    # (not on/off: YAML reads those as booleans)
    fused: str = "auto"
    output_dir: str = "runs"
    run_name: Optional[str] = None


@dataclass
class WandbConfig:
    enabled: bool = False
    project: str = "ser"
    group: Optional[str] = None
    mode: str = "offline"  # offline | online | disabled
    dir: Optional[str] = None


@dataclass
class RootConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    wandb: WandbConfig = field(default_factory=WandbConfig)


@dataclass
class SchedulerConfig:
    """Trial scheduler: ASHA stops bad trials early; FIFO runs all to max_t; median stopping."""

    name: str = "asha"  # asha | fifo | median
    max_t: int = 30  # epochs a trial may train (also trainer.max_epochs of every trial)
    grace_period: int = 3
    reduction_factor: float = 3.0


@dataclass
class SearcherConfig:
    name: str = "random"  # random (grid keys expand) | optuna (TPE, Bayesian)
    n_startup_trials: int = 5  # optuna: random trials before TPE takes over


@dataclass
class ResourcesConfig:
    cpu: float = 1.0
    gpu: float = 0.0  # fractional: 0.25 packs 4 trials on one GPU
    workers: int = 1  # >1: each trial trains with DDP on this many workers (Ray Train), cpu/gpu each


@dataclass
class CVConfig:
    folds: int = 0  # 0: one fold (data.fold); K: every trial trains K speaker folds, reports the mean


@dataclass
class NestedConfig:
    """Nested cross-validation: for each outer speaker fold, the sweep runs on the other speakers (CV over
    `inner_folds`, ranked by mean validation), and the chosen config is tested once on the outer fold."""

    outer_folds: int = 0  # 0: off
    inner_folds: int = 3


@dataclass
class SweepWandbConfig:
    enabled: bool = True
    project: str = "ser-sweeps"
    group: Optional[str] = None  # default: the sweep name
    mode: str = "offline"


@dataclass
class SweepConfig:
    """A sweep file: base config(s), fixed overrides, a search space of dotted keys, and how to search."""

    name: str = "sweep"
    base: List[str] = field(default_factory=list)  # presets by name, or YAML files relative to the sweep file
    fixed: Dict[str, Any] = field(default_factory=dict)
    space: Dict[str, Any] = field(default_factory=dict)
    metric: str = "val/uar"
    mode: str = "max"
    num_samples: int = 1
    max_concurrent_trials: int = 0  # 0: as many as resources allow
    seed: int = 0
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    searcher: SearcherConfig = field(default_factory=SearcherConfig)
    resources: ResourcesConfig = field(default_factory=ResourcesConfig)
    cv: CVConfig = field(default_factory=CVConfig)
    nested: NestedConfig = field(default_factory=NestedConfig)
    wandb: SweepWandbConfig = field(default_factory=SweepWandbConfig)
    storage_path: str = "sweep_results"
    address: Optional[str] = None  # Ray cluster address ("auto"); None: local
    keep_checkpoints: int = 1


# What each model family eats: a spectrogram (channels, n_mels, frames), a fixed vector (193 values), or audio
# through a pretrained encoder ("pretrained").
# The family names are listed here once; `CHOICES["model.name"]` and the model registry follow it.
MODEL_INPUTS: dict[str, str] = {
    "emotion_detector": "spectrogram",
    "emotion_detector2": "spectrogram",
    "sentan": "spectrogram",
    "cnn_lstm": "spectrogram",
    "feature_mlp": "vector",
    "svm": "vector",
    # a pretrained encoder's own front end takes the audio: cached hidden states (model.ssl_mode=frozen) or
    # waveforms through the encoder (finetune); the data side resolves which (resolve_feature_kind)
    "ssl": "pretrained",
}

# Every enumerated value, listed once: validation reads it, and the registries that bind names to code
# (models, corpora, optimisers) are checked against it when they are built.
CHOICES: dict[str, tuple[str, ...]] = {
    "data.corpus": (
        "ravdess",
        "crema_d",
        "tess",
        "emodb",
        "iemocap",
        "savee",
        "esd",
        "manifest",
        "folder",
        "synthetic",
    ),
    "data.fold_by": ("speaker", "session"),
    "data.sampler": ("shuffle", "balanced"),
    "data.audio.crop": ("center", "start"),
    "data.audio.normalize": ("none", "peak", "rms"),
    "data.features.kind": ("auto", "logmel", "mfcc", "handcrafted"),
    "data.features.normalize": ("none", "utterance", "train", "speaker"),
    "model.name": tuple(MODEL_INPUTS),
    "model.pool": ("max", "avg"),
    "model.time_pooling": ("grid", "stats", "attention"),
    "model.activation": ("relu", "elu", "gelu", "leaky_relu"),
    "model.dropout": ("none", "conv", "classifier", "both"),
    "model.lstm_pooling": ("last", "mean", "attention"),
    "model.svm_kernel": ("linear", "rbf", "poly", "sigmoid"),
    "model.svm_class_weight": ("none", "balanced"),
    "model.ssl_mode": ("frozen", "finetune"),
    "model.ssl_pooling": ("mean", "stats", "attention"),
    "model.ssl_cache_dtype": ("float16", "float32"),
    "optim.optimizer": ("adam", "adamw", "sgd"),
    "optim.schedule": ("constant", "tristage", "plateau", "cosine"),
    "trainer.accelerator": ("auto", "cpu", "gpu", "cuda", "mps"),
    "trainer.precision": ("64-true", "32-true", "16-mixed", "bf16-mixed", "16-true", "bf16-true"),
    "trainer.monitor": ("val/uar", "val/wa", "val/f1", "val/loss"),
    "trainer.fused": ("auto", "always", "never"),
    "wandb.mode": ("offline", "online", "disabled"),
}
# Sweep-file enumerations (SweepConfig), same rule.
SWEEP_CHOICES: dict[str, tuple[str, ...]] = {
    "mode": ("max", "min"),
    "scheduler.name": ("asha", "fifo", "median"),
    "searcher.name": ("random", "optuna"),
    "wandb.mode": ("offline", "online", "disabled"),
}


def monitor_mode(metric: str) -> str:
    """'min' for losses, 'max' for the recall/accuracy/F1 metrics."""
    return "min" if metric.endswith("loss") else "max"
