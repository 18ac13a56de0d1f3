"""Pretrained encoders, offline: each supported architecture built tiny with transformers' own config
classes, saved with save_pretrained, and loaded through ser's real code (resolution, identity, front ends,
weights, fine-tuning switches), plus every way `model.encoder` can be wrong."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from ser.config import ConfigError
from ser.data.embeddings import encoder_record
from ser.data.encoders.preprocess import feature_extractor, make_preprocessor
from ser.data.encoders.source import resolve_encoder
from ser.data.encoders.stack import build_stack
from tests.helpers.encoders import ARCHITECTURES, N_STATES, build_tiny, fake_hub_cache, save_tiny_encoder

torch.set_num_threads(1)
SECOND = 16000


@pytest.fixture(scope="module")
def encoders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("encoders")
    return {kind: save_tiny_encoder(kind, root / kind) for kind in ARCHITECTURES}


@pytest.mark.parametrize("kind", ARCHITECTURES)
def test_every_architecture_loads_its_saved_weights_and_returns_every_layer(
    encoders: dict[str, Path], kind: str, tmp_path: Path
) -> None:
    source = resolve_encoder(str(encoders[kind]), cache_dir=str(tmp_path))
    assert source.model_type == kind and source.identity.startswith("sha256:")
    stack = build_stack(encoder_record(source), SECOND, pretrained=True)
    # every encoder tensor is the saved model's (Whisper: the encoder half, positions cut to the clip)
    saved, _ = build_tiny(kind, seed=0)
    reference = (saved.encoder if kind == "whisper" else saved).state_dict()
    state = stack.model.state_dict()
    assert set(state) == set(reference)
    for key, mine in state.items():
        assert torch.equal(mine, reference[key][: mine.shape[0]]), key
    with torch.no_grad():
        states = stack(torch.randn(2, SECOND))
    assert states.shape[:3] == (2, N_STATES, 32) and states.shape[3] > 1 and torch.isfinite(states).all()
    assert (stack.n_states, stack.hidden_size) == (N_STATES, 32)


@pytest.mark.parametrize(
    ("kind", "settings"),
    [
        ("wav2vec2", {"do_normalize": True}),
        ("hubert", {"do_normalize": False}),
        ("whisper", {"feature_size": 80}),
        ("whisper", {"feature_size": 128}),
        ("audio-spectrogram-transformer", {"num_mel_bins": 32, "max_length": 120}),
        ("audio-spectrogram-transformer", {}),  # AudioSet's 128 mels x 1024 frames
    ],
)
def test_front_ends_match_the_encoders_own_feature_extractors(kind: str, settings: dict) -> None:
    extractor = feature_extractor(kind, settings)
    front = make_preprocessor(kind, extractor.to_dict())
    waves = np.random.default_rng(0).normal(0, 0.1, (2, SECOND)).astype(np.float32)
    waves[1, :4000] = 0.0  # a silent stretch
    mine = front(torch.from_numpy(waves)).numpy()
    field = "input_features" if kind == "whisper" else "input_values"
    theirs = extractor(list(waves), sampling_rate=SECOND, return_tensors="np")[field]
    if kind == "whisper":  # theirs is the 30-s window; ours the clip
        theirs = theirs[..., : mine.shape[-1]]
    assert mine.shape == theirs.shape
    assert np.abs(mine - theirs).max() < 1e-4


def test_an_architecture_rebuilt_from_its_record_takes_the_trained_weights(encoders: dict[str, Path]) -> None:
    for kind in ("wavlm", "whisper"):
        record = encoder_record(resolve_encoder(str(encoders[kind])))
        trained = build_stack(record, SECOND, pretrained=True)
        rebuilt = build_stack({**record, "folder": None}, SECOND, pretrained=False)
        rebuilt.load_state_dict(trained.state_dict())
        x = torch.randn(1, SECOND)
        with torch.no_grad():
            assert torch.allclose(trained(x), rebuilt(x), atol=1e-6)


def test_whisper_positions_follow_the_clip_and_a_too_long_clip_is_refused(encoders: dict[str, Path]) -> None:
    record = encoder_record(resolve_encoder(str(encoders["whisper"])))
    three_seconds = build_stack(record, 3 * SECOND, pretrained=True)
    assert three_seconds.model.embed_positions.num_embeddings == 150  # 300 log-mel frames, stride 2
    with torch.no_grad():
        assert three_seconds(torch.randn(1, 3 * SECOND)).shape[-1] == 150
    with pytest.raises(ConfigError, match="data.audio.duration"):
        build_stack(record, 31 * SECOND, pretrained=True)


@pytest.mark.parametrize("kind", ARCHITECTURES)
def test_feature_encoder_freezing_and_layer_depths(encoders: dict[str, Path], kind: str) -> None:
    stack = build_stack(encoder_record(resolve_encoder(str(encoders[kind]))), SECOND, pretrained=True)
    stack.freeze_feature_encoder()
    frozen = [n for n, p in stack.model.named_parameters() if not p.requires_grad]
    fronts = {"whisper": ("conv1.", "conv2."), "audio-spectrogram-transformer": ("embeddings.patch_",)}
    front = fronts.get(kind, ("feature_extractor.",))
    assert frozen and all(n.startswith(front) or "embed_positions" in n for n in frozen)
    depths = {n: stack.depth_of(n) for n, _ in stack.model.named_parameters()}
    assert set(depths.values()) == {0, 1, 2}  # input embedding, layer 1, layer 2 (and the norm after it)
    assert all(d == 0 for n, d in depths.items() if n.startswith(front))
    stack.enable_gradient_checkpointing()
    assert stack.model.is_activation_checkpointing


# ------------------------------------------------------------------------------------ bad encoders
def test_a_missing_or_wrong_encoder_is_one_line_naming_model_encoder(tmp_path: Path, encoders) -> None:
    file = tmp_path / "weights.bin"
    file.write_bytes(b"x")
    bert = tmp_path / "bert"
    bert.mkdir()
    (bert / "config.json").write_text(json.dumps({"model_type": "bert"}))
    bare = tmp_path / "bare"
    save_tiny_encoder("wav2vec2", bare)
    (bare / "preprocessor_config.json").unlink()
    empty = tmp_path / "empty"
    save_tiny_encoder("hubert", empty)
    (empty / "model.safetensors").unlink()
    cases = [
        (str(tmp_path / "nowhere"), "does not exist"),
        (str(file), "is a file"),
        (str(bert), "supported encoders"),
        (str(bare), "preprocessor_config.json"),
        (str(empty), "no weights"),
    ]
    for source, words in cases:
        with pytest.raises(ConfigError, match="model.encoder") as err:
            resolve_encoder(source, cache_dir=str(tmp_path))
        assert words in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="model.encoder_revision"):
        resolve_encoder(str(encoders["wavlm"]), revision="v2", cache_dir=str(tmp_path))


def test_incomplete_weights_are_refused_rather_than_left_random(tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file

    folder = save_tiny_encoder("wavlm", tmp_path / "cut")
    tensors = load_file(str(folder / "model.safetensors"))
    save_file({k: v for k, v in tensors.items() if "layers.1." not in k}, str(folder / "model.safetensors"))
    record = encoder_record(resolve_encoder(str(folder), cache_dir=str(tmp_path)))
    with pytest.raises(ConfigError, match="untrained"):
        build_stack(record, SECOND, pretrained=True)


def test_a_hub_id_without_network_says_how_to_download_it_once(tmp_path: Path, monkeypatch) -> None:
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ConfigError) as err:
        resolve_encoder("facebook/wav2vec2-base", revision="main")
    message = str(err.value)
    assert "\n" not in message and "model.encoder" in message
    assert "hf download facebook/wav2vec2-base --revision main --local-dir DIR" in message


def test_a_hub_id_resolves_from_the_hub_cache_by_revision(tmp_path: Path, monkeypatch, encoders) -> None:
    from huggingface_hub import constants

    first, second = "a" * 40, "b" * 40
    cache = fake_hub_cache(
        tmp_path / "hub",
        "ser-test/tiny",
        {first: encoders["wav2vec2"], second: save_tiny_encoder("wav2vec2", tmp_path / "v2", seed=1)},
        {"main": first, "v2": second},
    )
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    main = resolve_encoder("ser-test/tiny")
    v2 = resolve_encoder("ser-test/tiny", revision="v2")
    assert main.identity == f"ser-test/tiny@{first}" and v2.identity == f"ser-test/tiny@{second}"
    assert resolve_encoder("ser-test/tiny", revision=second).folder == v2.folder
    stack = build_stack(encoder_record(v2), SECOND, pretrained=True)  # loads from the snapshot folder
    assert stack.n_states == N_STATES


def test_a_local_encoders_identity_follows_its_content(tmp_path: Path) -> None:
    folder = save_tiny_encoder("hubert", tmp_path / "enc", seed=0)
    cache = str(tmp_path / "cache")
    before = resolve_encoder(str(folder), cache_dir=cache).identity
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes())  # same bytes, new mtime: same encoder
    assert resolve_encoder(str(folder), cache_dir=cache).identity == before
    save_tiny_encoder("hubert", folder, seed=1)  # retrained in place
    assert resolve_encoder(str(folder), cache_dir=cache).identity != before
