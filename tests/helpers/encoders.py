"""Tiny random-initialised pretrained encoders, saved the way the hub holds real ones, for offline tests.

Each architecture the ssl family supports is built from transformers' own config class at a few thousand
parameters and saved with `save_pretrained` (weights, config.json) next to its feature extractor's
preprocessor_config.json, so tests go through the same loading code as a downloaded model.
"""

from __future__ import annotations

import shutil
from pathlib import Path

SMALL = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64}
CONV = {"conv_dim": (16,) * 7, "num_conv_pos_embedding_groups": 2}
ARCHITECTURES = ("wav2vec2", "hubert", "wavlm", "data2vec-audio", "whisper", "audio-spectrogram-transformer")
N_STATES = 3  # the input embedding and 2 layers, for every tiny encoder


def build_tiny(kind: str, seed: int = 0):
    """(model, feature extractor): a tiny `kind` encoder (a config.model_type), random weights from `seed`."""
    import torch
    import transformers as tf
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    torch.manual_seed(seed)
    if kind == "whisper":
        config = tf.WhisperConfig(
            d_model=32,
            encoder_layers=2,
            encoder_attention_heads=2,
            encoder_ffn_dim=64,
            decoder_layers=1,
            decoder_attention_heads=2,
            decoder_ffn_dim=64,
            num_mel_bins=80,
            vocab_size=128,
            decoder_start_token_id=1,
            pad_token_id=0,
            bos_token_id=1,
            eos_token_id=2,
        )
        model, extractor = tf.WhisperModel(config), tf.WhisperFeatureExtractor(feature_size=80)
    elif kind == "audio-spectrogram-transformer":
        config = tf.ASTConfig(**SMALL, max_length=100, num_mel_bins=32)
        model, extractor = tf.ASTModel(config), tf.ASTFeatureExtractor(num_mel_bins=32, max_length=100)
    else:
        config_class, model_class = {
            "wav2vec2": (tf.Wav2Vec2Config, tf.Wav2Vec2Model),
            "hubert": (tf.HubertConfig, tf.HubertModel),
            "wavlm": (tf.WavLMConfig, tf.WavLMModel),
            "data2vec-audio": (tf.Data2VecAudioConfig, tf.Data2VecAudioModel),
        }[kind]
        positions = {"num_conv_pos_embeddings": 5 if kind == "data2vec-audio" else 16}
        model = model_class(config_class(**SMALL, **CONV, **positions))
        extractor = tf.Wav2Vec2FeatureExtractor(do_normalize=kind != "hubert")
    return model, extractor


def save_tiny_encoder(kind: str, folder: Path, seed: int = 0) -> Path:
    """A tiny `kind` encoder with random weights from `seed`, saved in `folder` as the hub holds one."""
    model, extractor = build_tiny(kind, seed)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    extractor.save_pretrained(folder)
    return folder


def fake_hub_cache(cache: Path, repo: str, snapshots: dict[str, Path], refs: dict[str, str]) -> Path:
    """A Hugging Face hub cache holding `repo` as the hub leaves it after a download: one folder per
    commit (`snapshots`: commit -> folder to copy) and named refs (branch or tag -> commit)."""
    storage = cache / f"models--{repo.replace('/', '--')}"
    for commit, source in snapshots.items():
        shutil.copytree(source, storage / "snapshots" / commit)
    (storage / "refs").mkdir(parents=True, exist_ok=True)
    for name, commit in refs.items():
        (storage / "refs" / name).write_text(commit)
    return cache
