"""A pretrained encoder as one module: waveforms [B, samples] -> every layer's hidden states [B, L, D, T].

`L` counts the encoder's input embedding (index 0) and each transformer layer, as transformers returns
them with `output_hidden_states`; `D` is the hidden size and `T` the frames (AST: patch tokens). The
(layer, dim, time) layout is that of a spectrogram's (channel, bin, time), so the feature normalisers, the
per-speaker statistics and SpecAugment work on hidden states unchanged.

The same module extracts the frozen mode's cached states (ser/data/embeddings.py), scores them at
prediction time, and trains inside the classifier in fine-tune mode, so the three cannot disagree.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from ser.config import ConfigError
from ser.data.encoders.preprocess import WhisperLogMel, make_preprocessor
from ser.data.encoders.source import AUDIOSET, INSTALL_HINT, WAV2VEC2_LIKE, encoder_error

# Where each architecture keeps its convolutional front (model.freeze_feature_encoder) and the norm after
# its last layer (which layer-wise decay gives the top layer's rate).
FEATURE_ENCODER = {"whisper": ("conv1.", "conv2."), "audio-spectrogram-transformer": ("embeddings.patch_",)}
FINAL_NORM = {"whisper": "layer_norm.", "audio-spectrogram-transformer": "layernorm."}
# the transformer layers (not e.g. data2vec's positional convs, also numbered `layers`)
LAYER_INDEX = re.compile(r"^(?:encoder\.)?layers?\.(\d+)\.")
# keys a pretrained checkpoint may lack without leaving the encoder part untrained
MAY_BE_MISSING = ("masked_spec_embed",)


def require_transformers() -> None:
    try:
        import transformers  # noqa: F401
    except ImportError:
        raise ConfigError(f"model 'ssl' needs the optional extra: {INSTALL_HINT}") from None


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Loading reports and progress bars off while transformers loads weights (ser reports what matters)."""
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


def _config(model_type: str, config: dict[str, Any]):
    from transformers import AutoConfig

    return AutoConfig.for_model(model_type, **{k: v for k, v in config.items() if k != "model_type"})


def load_model(model_type: str, config: dict[str, Any], folder: str | None) -> nn.Module:
    """The bare encoder: the pretrained weights in `folder`, or (folder None) the architecture of `config`
    with untrained weights, for a checkpoint's state dict to fill."""
    require_transformers()
    from transformers import AutoModel, WhisperForAudioClassification
    from transformers.models.whisper.modeling_whisper import WhisperEncoder

    with quiet_transformers():
        if folder is None:
            arch = _config(model_type, config)
            return WhisperEncoder(arch) if model_type == "whisper" else AutoModel.from_config(arch)
        loader = WhisperForAudioClassification if model_type == "whisper" else AutoModel
        try:
            model, info = loader.from_pretrained(folder, dtype=torch.float32, output_loading_info=True)
        except (OSError, ValueError, RuntimeError) as exc:
            first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
            raise encoder_error(f"{folder}: the weights cannot be loaded ({first})") from None
    if model_type == "whisper":  # the classification wrapper loads the encoder half of a Whisper checkpoint
        model = model.encoder
        missing = [k[len("encoder.") :] for k in info["missing_keys"] if k.startswith("encoder.")]
    else:
        missing = list(info["missing_keys"])
    missing = [k for k in missing if not k.endswith(MAY_BE_MISSING)]
    if missing:
        raise encoder_error(
            f"{folder}: the weights leave {len(missing)} encoder tensor(s) untrained (e.g. {missing[:3]}); "
            f"is it a complete {model_type} checkpoint?"
        )
    return model


class EncoderStack(nn.Module):
    """The encoder's own front end (preprocess.py), then the encoder; forward returns [B, L, D, T]."""

    seeded_dropout = False  # its dropout stays torch's own, drawn on its device (ser/models/dropout.py)

    def __init__(self, model: nn.Module, preprocess: nn.Module, model_type: str) -> None:
        super().__init__()
        self.model = model
        self.preprocess = preprocess
        self.model_type = model_type
        config = model.config
        self.n_layers = int(getattr(config, "encoder_layers", None) or config.num_hidden_layers)
        self.hidden_size = int(getattr(config, "d_model", None) or config.hidden_size)

    @property
    def n_states(self) -> int:
        """Hidden states per input: the input embedding and one per layer."""
        return self.n_layers + 1

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        states = self.model(self.preprocess(wave), output_hidden_states=True).hidden_states
        return torch.stack(states, dim=1).transpose(2, 3)

    # ---- fine-tuning -------------------------------------------------------------------------------
    def freeze_feature_encoder(self) -> None:
        """Keep the convolutional front (wav2vec2 family: the CNN feature encoder; Whisper: its two convs;
        AST: the patch embedding) at its pretrained weights, as fine-tuning recipes do."""
        if self.model_type in WAV2VEC2_LIKE:  # transformers' own switch: it also skips building the graph
            self.model.feature_extractor._freeze_parameters()
            return
        for name, param in self.model.named_parameters():
            if name.startswith(FEATURE_ENCODER[self.model_type]):
                param.requires_grad_(False)

    def enable_gradient_checkpointing(self) -> None:
        """Recompute each layer's activations in backward (non-reentrant: works under DDP)."""
        self.model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})

    def depth_of(self, name: str) -> int:
        """0 for the input embedding (front end, projections, positions), k for layer k (1-based), the top
        layer's for the norm after it."""
        found = LAYER_INDEX.search(name)
        if found:
            return int(found.group(1)) + 1
        final = FINAL_NORM.get(self.model_type)
        if self.model_type in WAV2VEC2_LIKE and getattr(self.model.config, "do_stable_layer_norm", False):
            final = "encoder.layer_norm."
        return self.n_layers if final and name.startswith(final) else 0

    def param_depths(self) -> Iterator[tuple[nn.Parameter, int]]:
        for name, param in self.model.named_parameters():
            yield param, self.depth_of(name)


def fit_whisper_positions(encoder: nn.Module, preprocess: WhisperLogMel, n_samples: int) -> None:
    """Whisper's encoder takes 30-s windows; cut its (fixed, sinusoidal) positions to the clip's frames so
    a 3-s clip costs 3 s of compute, not 30 (the states of the clip's frames, without 27 s of padding)."""
    positions = preprocess.frames(n_samples) // 2
    table = encoder.embed_positions
    if positions > table.num_embeddings:
        longest = table.num_embeddings * 2 * preprocess.hop_length
        raise ConfigError(
            f"invalid config key 'data.audio.duration': Whisper's encoder takes at most {longest} samples "
            f"({table.num_embeddings * 2 * preprocess.hop_length / 16000:g} s at 16 kHz)"
        )
    cut = nn.Embedding(positions, table.embedding_dim)
    cut.weight.data.copy_(table.weight.data[:positions])
    cut.requires_grad_(False)
    encoder.embed_positions = cut
    encoder.max_source_positions = positions
    encoder.config.max_source_positions = positions


def build_stack(encoder: dict[str, Any], n_samples: int, pretrained: bool) -> nn.Module:
    """The stack for `encoder` (an EncoderSource.record() plus its local `folder`) on clips of `n_samples`:
    pretrained weights from the folder, or the bare architecture when a checkpoint will fill it."""
    model_type = str(encoder["model_type"])
    if model_type in AUDIOSET:
        from ser.data.encoders.audioset_stack import build_audioset_stack

        return build_audioset_stack(encoder, pretrained)
    folder = encoder.get("folder") if pretrained else None
    if pretrained and not folder:
        raise ValueError("a pretrained encoder stack needs the encoder's local folder")
    model = load_model(model_type, dict(encoder["config"]), folder)
    preprocess = make_preprocessor(model_type, dict(encoder["preprocessor"]))
    if isinstance(preprocess, WhisperLogMel):
        fit_whisper_positions(model, preprocess, n_samples)
    return EncoderStack(model, preprocess, model_type).eval()


def summarize(states: Any, grain: str) -> Any:
    """[B, L, D, T] states -> per-layer time means [B, L, D] ('utterance') or the frames themselves: what
    the frozen cache holds (ser/data/embeddings.py extracts it with this, FrozenStates scores with it)."""
    return states.mean(dim=-1) if grain == "utterance" else states


class FrozenStates(nn.Module):
    """Waveforms [B, samples] -> what the frozen cache holds for them (time means or frames, rounded
    through the cache's dtype), so `ser predict` feeds a frozen head exactly what it was trained on."""

    def __init__(self, stack: EncoderStack, grain: str, dtype: str) -> None:
        super().__init__()
        self.stack, self.grain, self.dtype = stack, grain, dtype

    @torch.no_grad()
    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        states = summarize(self.stack(wave), self.grain)
        return states.half().float() if self.dtype == "float16" else states.float()
