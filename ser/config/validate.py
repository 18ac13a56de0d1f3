"""What the schema's types cannot say: enumerations, numeric ranges and keys that constrain each other.

Every check raises a `ConfigError` that names the key, so `ser fit`, a sweep file's `fixed` and `space`
values and a checkpoint's stored config are all refused at load time with one line, before any data is
read or any trial starts (a bad value used to surface as a traceback deep inside training).
"""

from __future__ import annotations

import math
from typing import Any

from omegaconf import DictConfig, OmegaConf

from ser.config.schema import CHOICES, MODEL_INPUTS, ConfigError

# key -> (low, high, low inclusive?) for numbers; None = unbounded on that side. Sizes have generous upper
# bounds so an absurd value (model.depth=1e23) is refused here, not as an OverflowError or a 36 TB
# allocation; the model's parameter memory is estimated before it is built as well (models/registry.py).
RANGES: dict[str, tuple[float | None, float | None, bool]] = {
    "data.batch_size": (1, 65536, True),
    "data.folds": (0, 100_000, True),
    "data.fold_seed": (0, 2**32 - 1, True),  # seeds: what numpy and Lightning accept
    "data.holdout.seed": (0, 2**32 - 1, True),
    "data.synthetic.seed": (0, 2**32 - 1, True),
    "trainer.seed": (0, 2**32 - 1, True),
    "data.num_workers": (0, 256, True),
    "data.val_folds": (0, 1000, True),
    "data.device_max_mb": (0, None, True),
    "data.holdout.fraction": (0, 1, True),
    "data.synthetic.speakers": (2, 1000, True),
    "data.synthetic.per_label": (1, 1000, True),
    "data.synthetic.duration": (0, 60, False),
    "data.synthetic.sample_rate": (1000, 192000, True),
    "data.synthetic.variability": (0, None, True),
    "data.audio.sample_rate": (1000, 192000, True),
    "data.audio.duration": (0, 600, False),
    "data.features.n_mels": (1, 1024, True),
    "data.features.n_fft": (2, 65536, True),
    "data.features.hop_length": (1, 65536, True),
    "data.features.n_mfcc": (1, 1024, True),
    "data.features.fmin": (0, None, True),
    "data.features.deltas": (0, 2, True),
    "data.augment.freq_masks": (0, 100, True),
    "data.augment.freq_width": (0, 1024, True),
    "data.augment.time_masks": (0, 100, True),
    "data.augment.time_width": (0, 100000, True),
    "data.augment.shift_max": (0, None, True),
    "data.augment.speed_min": (0, None, False),
    "data.augment.pitch_semitones": (0, 12, True),
    "data.augment.mixup_alpha": (0, None, True),
    "data.augment.freq_warp_max": (0, 0.5, True),
    "data.augment.time_stretch_max": (0, 0.5, True),
    "model.depth": (1, 64, True),
    "model.channels": (1, 8192, True),
    "model.channel_growth": (0, 16, False),
    "model.max_channels": (1, 8192, True),
    "model.kernel_size": (1, 64, True),
    "model.kernel_width": (1, 1024, True),
    "model.conv_dropout": (0, 1, True),
    "model.classifier_dropout": (0, 1, True),
    "model.hidden": (1, 65536, True),
    "model.classifier_layers": (1, 16, True),
    "model.lstm_hidden": (1, 16384, True),
    "model.lstm_layers": (1, 64, True),
    "model.svm_c": (0, None, False),
    "model.ensemble": (1, 16, True),
    "model.encoder_lr_scale": (0, None, False),
    "model.layer_lr_decay": (0, 1, False),
    "model.fusion_weight": (0, 1, True),
    "model.adversary_weight": (0, None, True),
    "optim.lr": (0, None, True),
    "optim.beta1": (0, 1, True),
    "optim.beta2": (0, 1, True),
    "optim.momentum": (0, None, True),
    "optim.weight_decay": (0, None, True),
    "optim.l2": (0, None, True),
    "optim.warmup_frac": (0, 1, True),
    "optim.hold_frac": (0, 1, True),
    "optim.final_lr_scale": (0, 1, True),
    "optim.plateau_patience": (0, 1_000_000, True),
    "optim.plateau_factor": (0, 1, False),
    "optim.label_smoothing": (0, 1, True),
    "optim.grad_clip": (0, None, True),
    "optim.ema_decay": (0, 1, True),
    "trainer.max_epochs": (1, 1_000_000, True),
    "trainer.early_stopping_patience": (0, 1_000_000, True),
    "trainer.limit_train_batches": (0, 1e9, False),
    "trainer.limit_val_batches": (0, 1e9, False),
}
# upper bounds that must stay strictly below (a probability of 1 is fine, a decay of 1 is not)
STRICT_HIGH = {
    "data.holdout.fraction",  # everyone held out leaves no one to train on
    "model.conv_dropout",
    "model.classifier_dropout",
    "optim.beta1",
    "optim.beta2",
    "optim.label_smoothing",
    "optim.ema_decay",
    "optim.plateau_factor",
    "data.augment.freq_warp_max",
    "data.augment.time_stretch_max",
}
PROBABILITIES = ("specaugment_p", "noise_p", "shift_p", "speed_p", "pitch_p", "freq_warp_p", "time_stretch_p")


def fail(key: str, problem: str) -> None:
    raise ConfigError(f"invalid config key '{key}': {problem}")


def check_range(key: str, value: Any) -> None:
    """`value` of `key` within RANGES[key] (and finite); None passes (optional keys)."""
    if value is None or key not in RANGES:
        return
    low, high, low_inclusive = RANGES[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        fail(key, f"{value!r} must be a finite number")
    too_low = low is not None and (value < low if low_inclusive else value <= low)
    too_high = high is not None and (value >= high if key in STRICT_HIGH else value > high)
    if too_low or too_high:
        lo = "" if low is None else f"{'>=' if low_inclusive else '>'} {_number(low)}"
        hi = "" if high is None else f"{'<' if key in STRICT_HIGH else '<='} {_number(high)}"
        fail(key, f"{value!r} must be {' and '.join(p for p in (lo, hi) if p)}")


def _number(x: float) -> str:
    """4294967295, not 4.29497e+09; 0.5 and 1e+09 as :g writes them."""
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e12 else f"{x:g}"


def check_choice(key: str, value: Any) -> None:
    allowed = CHOICES[key]
    if value not in allowed:
        import difflib

        close = difflib.get_close_matches(str(value), allowed, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        fail(key, f"{value!r} is not one of {list(allowed)}{hint}")


def _select(cfg: DictConfig, key: str) -> Any:
    return OmegaConf.select(cfg, key, throw_on_missing=False)


def validate(cfg: DictConfig) -> None:
    """Check a resolved root config; ConfigError naming the first bad key."""
    for key in CHOICES:
        check_choice(key, _select(cfg, key))
    for key in RANGES:
        check_range(key, _select(cfg, key))
    _check_data(cfg.data)
    _check_optim(cfg.optim)
    _check_layer(cfg.model.layer)
    if MODEL_INPUTS.get(cfg.model.name) == "pretrained":
        _check_pretrained(cfg)
    if MODEL_INPUTS.get(cfg.model.name) == "vector" and int(cfg.data.features.deltas) != 0:
        # refused here, not after minutes of feature extraction when the model is built
        fail(
            "data.features.deltas",
            f"time derivatives need a spectrogram feature (logmel or mfcc); model '{cfg.model.name}' "
            "takes a vector per clip",
        )
    _check_run_name(cfg.trainer.run_name)
    _check_views(cfg)
    if str(cfg.trainer.devices) != "auto" and not str(cfg.trainer.devices).lstrip("-").isdigit():
        fail("trainer.devices", f"{cfg.trainer.devices!r} must be 'auto' or a number of devices")


def _check_data(data: DictConfig) -> None:
    fold = str(data.fold)
    if fold != "all" and not fold.isdigit():
        fail("data.fold", f"{fold!r} is not a fold index (0, 1, ...) or 'all'")
    if data.folds < 0 or data.folds == 1:
        fail("data.folds", f"{data.folds} must be 0 (leave one speaker out) or at least 2")
    for i, corpus in enumerate(data.corpora):
        if corpus.name not in CHOICES["data.corpus"]:
            fail(f"data.corpora[{i}].name", f"{corpus.name!r} is not one of {list(CHOICES['data.corpus'])}")
    feat, audio = data.features, data.audio
    if data.labels is not None:
        if not data.labels:
            fail("data.labels", "an empty list keeps no class; leave it unset (null) for every label found")
        names = [str(label) for label in data.labels]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            fail("data.labels", f"{', '.join(twice)} listed more than once")
    hold = data.holdout
    if hold.speakers and float(hold.fraction) > 0:
        fail(
            "data.holdout.speakers",
            f"give the held-out speakers or data.holdout.fraction ({hold.fraction}), not both",
        )
    if data.sampler == "balanced" and data.class_weights:
        fail(
            "data.sampler",
            "balanced sampling and data.class_weights=true both correct class imbalance; use one of them",
        )
    if feat.win_length is not None and not 0 < feat.win_length <= feat.n_fft:
        fail("data.features.win_length", f"{feat.win_length} must be in (0, n_fft={feat.n_fft}]")
    if feat.kind == "mfcc" and feat.n_mfcc > feat.n_mels:
        fail("data.features.n_mfcc", f"{feat.n_mfcc} must be <= data.features.n_mels ({feat.n_mels})")
    nyquist = audio.sample_rate / 2
    fmax = nyquist if feat.fmax is None else feat.fmax
    if not feat.fmin < fmax <= nyquist:
        fail(
            "data.features.fmax", f"need fmin ({feat.fmin}) < fmax ({fmax}) <= sample_rate / 2 ({nyquist:g})"
        )
    aug = data.augment
    for name in PROBABILITIES:
        if not 0.0 <= float(aug[name]) <= 1.0:
            fail(f"data.augment.{name}", f"{aug[name]} must be a probability in [0, 1]")
    for low, high in (("snr_db_min", "snr_db_max"), ("speed_min", "speed_max")):
        if float(aug[low]) > float(aug[high]):
            fail(f"data.augment.{low}", f"{aug[low]} is greater than data.augment.{high} ({aug[high]})")


def _check_run_name(name: Any) -> None:
    """A run name is one folder inside trainer.output_dir: no separator, no `..`, nothing that escapes."""
    if name is None:
        return
    text = str(name)
    if not text.strip() or text in (".", "..") or "/" in text or "\\" in text or "\0" in text:
        fail(
            "trainer.run_name",
            f"{text!r} must be a plain folder name inside trainer.output_dir (no '/', '\\' or '..')",
        )


LAYER_WORDS = ("weighted", "last")  # model.layer: one of these, or a layer index


def _check_layer(layer: Any) -> None:
    text = str(layer)
    if text not in LAYER_WORDS and not text.isdigit():
        fail("model.layer", f"{layer!r} must be {' or '.join(LAYER_WORDS)} or a layer index (0, 1, ...)")


def _check_pretrained(cfg: DictConfig) -> None:
    """The ssl family: an encoder to load, and only the data settings its two modes can honour."""
    model, data = cfg.model, cfg.data
    if not model.encoder:
        fail(
            "model.encoder",
            "model 'ssl' needs a pretrained encoder: a hub id (e.g. facebook/wav2vec2-base), a local "
            "directory holding one (config.json, preprocessor_config.json and the weights), or an AudioSet "
            "encoder file (yamnet:PATH.tflite, efficientat:PATH.pt)",
        )
    if data.features.kind != "auto":
        fail(
            "data.features.kind",
            f"{data.features.kind!r}: model 'ssl' takes audio through its encoder's own feature extractor; "
            "use data.features.kind=auto",
        )
    if int(data.features.deltas) != 0:
        fail("data.features.deltas", "time derivatives are for log-mel/MFCC features, not encoder states")
    aug = data.augment
    if float(aug.freq_warp_p) > 0:
        fail("data.augment.freq_warp_p", "the frequency warp needs log-mel features, not encoder states")
    wave_augments = [k for k in ("noise_p", "shift_p", "speed_p", "pitch_p") if float(aug[k]) > 0]
    if model.ssl_mode == "frozen" and wave_augments:
        fail(
            f"data.augment.{wave_augments[0]}",
            "frozen encoder states are computed once per file and cached, so waveform augmentation cannot "
            "reach them; use model.ssl_mode=finetune to augment the audio the encoder hears",
        )
    if model.ssl_mode == "finetune":
        for key in ("specaugment_p", "time_stretch_p"):
            if float(aug[key]) > 0:
                fail(
                    f"data.augment.{key}",
                    "a fine-tuned encoder takes waveforms; its own time masking (mask_time_prob in the "
                    "encoder's config) is what applies inside it",
                )
        if data.features.normalize in ("train", "speaker"):
            fail(
                "data.features.normalize",
                f"{data.features.normalize!r} standardises cached features; a fine-tuned encoder takes "
                "waveforms (its feature extractor normalises them): use none or utterance",
            )


def _check_views(cfg: DictConfig) -> None:
    """Fusion and the speaker adversary: a CNN on cached spectrograms, a second view it can read."""
    model, aug = cfg.model, cfg.data.augment
    fusion, adversary = str(model.fusion), float(model.adversary_weight) > 0
    if not (fusion != "none" or adversary):
        return
    key = "model.fusion" if fusion != "none" else "model.adversary_weight"
    family = MODEL_INPUTS.get(model.name)
    if family == "vector" and fusion == "early" and not adversary:
        pass  # svm / feature_mlp: the second view concatenated to the vector
    elif family != "spectrogram":
        what = "early fusion (model.fusion=early) works" if family == "vector" else "works"
        fail(key, f"{what} on a CNN over log-mel/MFCC (emotion_detector, sentan, ...), not '{model.name}'")
    if int(model.ensemble) > 1:
        fail("model.ensemble", f"seed ensembles of a {key.split('.')[1]} model are not supported yet; use 1")
    wave_augments = [k for k in ("noise_p", "shift_p", "speed_p", "pitch_p") if float(aug[k]) > 0]
    if wave_augments:
        fail(
            f"data.augment.{wave_augments[0]}",
            f"{key} trains on cached features (the views are computed once per clip); waveform "
            "augmentation cannot reach them (use the feature augmentations: freq_warp_p, specaugment_p)",
        )
    if adversary and float(aug.mixup_alpha) > 0:
        fail("data.augment.mixup_alpha", "mixup blends two speakers, so the speaker adversary has no label")
    if fusion != "none" and model.fusion_view == "encoder" and not model.encoder:
        fail(
            "model.encoder",
            "model.fusion_view=encoder needs a frozen encoder (a local folder or file); the ravdess recipe "
            "fuses with EfficientAT mn04: model.encoder=efficientat:PATH/mn04_as_mAP_432.pt, or use "
            "--config ravdess_cnn for the CNN alone",
        )


def _check_optim(optim: DictConfig) -> None:
    if optim.warmup_frac + optim.hold_frac > 1.0:
        fail(
            "optim.warmup_frac",
            f"warmup_frac ({optim.warmup_frac}) + hold_frac ({optim.hold_frac}) must be at most 1",
        )


def check_optim_values(optim: Any) -> None:
    """The optimiser checks for an OptimConfig (or mapping) outside a root config, e.g. checkpoint hparams."""
    for key in RANGES:
        if key.startswith("optim."):
            check_range(key, getattr(optim, key.split(".", 1)[1]))
    for key in ("optim.optimizer", "optim.schedule"):
        check_choice(key, getattr(optim, key.split(".", 1)[1]))
    _check_optim(optim)
