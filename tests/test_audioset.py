"""AudioSet encoders from single files (model.encoder=yamnet:PATH / efficientat:PATH / a detected file),
offline, with random-weight files in the release formats (tests/helpers/audioset.py): the weights land where
the file puts them (int8 ones dequantised), each front end matches an independent numpy computation, states
are cached once per file sha256, a frozen head and a fine-tuned encoder train and score, and a missing or
wrong file is one line naming it. The real files are checked by bench/audioset_check.py, never here."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch

from ser.config import ConfigError, load_config
from tests.conftest import TINY_OVERRIDES, write_wav
from tests.helpers.audioset import (
    YAMNET_BLOCKS,
    YAMNET_STEM,
    efficientat_state_dict,
    write_tiny_efficientat,
    write_tiny_yamnet,
)

pytest.importorskip("tflite")
HEAD = ["model.name=ssl", "model.classifier_layers=2", "model.hidden=32", "data.features.normalize=train"]


@pytest.fixture(scope="module")
def yamnet_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    path = tmp_path_factory.mktemp("yamnet") / "yamnet.tflite"
    return path, write_tiny_yamnet(path)


@pytest.fixture(scope="module")
def efficientat_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_efficientat(tmp_path_factory.mktemp("efficientat") / "mn01_as.pt")


def stack_of(source: str):
    from ser.data.embeddings import encoder_record
    from ser.data.encoders.source import resolve_encoder
    from ser.data.encoders.stack import build_stack

    resolved = resolve_encoder(source)
    return resolved, build_stack(encoder_record(resolved), 16000, pretrained=True)


# ------------------------------------------------------------------------------------------- YAMNet
def test_yamnet_tflite_weights_land_where_the_file_puts_them(yamnet_file) -> None:
    path, stored = yamnet_file
    source, stack = stack_of(f"yamnet:{path}")
    assert (source.model_type, source.sampling_rate) == ("yamnet", 16000)
    assert source.identity == "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
    layout = source.config["layout"]
    assert layout["stem"] == [YAMNET_STEM, 2, 3] and [b[:2] for b in layout["blocks"]] == [
        list(b) for b in YAMNET_BLOCKS
    ]
    layers = stack.model.net.layers
    # TFLite's [out, kh, kw, in] and depthwise [1, kh, kw, C] -> torch's [out, in / groups, kh, kw]
    expected = {0: stored["stem"].transpose(0, 3, 1, 2)}
    for i in range(len(YAMNET_BLOCKS)):
        expected[1 + 2 * i] = stored[f"dw{i}"].transpose(3, 0, 1, 2)  # dw0: int8 behind a DEQUANTIZE
        expected[2 + 2 * i] = stored[f"pw{i}"].transpose(0, 3, 1, 2)  # per-channel int8 scales
    for index, weight in expected.items():
        assert np.array_equal(layers[index].weight.detach().numpy(), weight), index
    assert np.array_equal(stack.model.net.classifier.weight.detach().numpy(), stored["classifier"])
    assert np.array_equal(stack.model.frontend.dft_real.numpy(), stored["dft_real"])  # int8 in the file


def test_a_bare_tflite_path_is_detected_as_yamnet(yamnet_file) -> None:
    source, _ = stack_of(str(yamnet_file[0]))
    assert source.model_type == "yamnet"


def test_yamnet_front_end_matches_an_independent_log_mel_and_cuts_patches_like_yamnet() -> None:
    from ser.data.encoders.yamnet import YamnetFrontEnd, canonical_frontend, n_patches

    constants = canonical_frontend()
    wave = np.random.default_rng(0).normal(0, 0.1, 20000).astype(np.float32)
    patches = YamnetFrontEnd(constants)(torch.from_numpy(wave)[None])[0].numpy()
    # YAMNet pads to one 15,600-sample patch plus whole 7,680-sample hops: 23,280 samples, 144 frames
    padded = np.pad(wave, (0, 23280 - len(wave)))
    frames = np.stack([padded[i * 160 : i * 160 + 400] for i in range(144)])
    hann = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(400) / 400)
    magnitude = np.abs(np.fft.rfft(frames * hann, n=512))
    log_mel = np.log(magnitude @ constants["mel"].T + 0.001)
    assert patches.shape == (2, 96, 64) and n_patches(len(wave)) == 2
    assert np.allclose(patches[0], log_mel[:96], atol=1e-3) and np.allclose(
        patches[1], log_mel[48:], atol=1e-3
    )
    mel = constants["mel"]
    assert mel.shape == (64, 257) and mel[:, 0].max() == 0 and mel.max() <= 1.0
    centres = np.arange(257)[mel.argmax(axis=1)] * 8000 / 256  # bands rise in frequency within 125-7500 Hz
    assert np.all(np.diff(centres) >= 0) and 125 <= centres[0] and centres[-1] <= 7500


def test_yamnet_states_are_one_embedding_per_patch(yamnet_file) -> None:
    from ser.data.encoders.yamnet import n_patches

    _, stack = stack_of(f"yamnet:{yamnet_file[0]}")
    states = stack(torch.randn(3, 16000))
    assert states.shape == (3, 1, YAMNET_BLOCKS[-1][0], n_patches(16000)) and stack.n_states == 1
    assert torch.isfinite(states).all() and (states >= 0).all()  # the mean of ReLU maps


# -------------------------------------------------------------------------------------- EfficientAT
@pytest.mark.parametrize(("width", "name"), [(0.1, "mn01"), (0.2, "mn02")])
def test_efficientat_state_dicts_of_any_width_load_strictly(tmp_path: Path, width: float, name: str) -> None:
    path = write_tiny_efficientat(tmp_path / "model.pt", width=width)
    source, stack = stack_of(f"efficientat:{path}")
    assert (source.model_type, source.sampling_rate, source.config["width"]) == ("efficientat", 32000, name)
    state = torch.load(path, weights_only=True)
    loaded = stack.model.net.state_dict()
    assert loaded.keys() == state.keys() and all(torch.equal(loaded[k], state[k]) for k in state)
    wave = torch.randn(2, 32000)
    states = stack(wave)
    frames = 1 + (32000 - 1) // 320  # the STFT's centred frames after pre-emphasis
    assert states.shape == (2, 1, source.config["layout"]["dim"], -(-frames // 32))
    # the mean over time is the release's pooled embedding (global average of the last feature map)
    maps, logits = stack.model.net(stack.model.frontend(wave))
    assert torch.allclose(states.mean(dim=-1)[:, 0], maps.mean(dim=(2, 3)), atol=1e-5)
    assert logits.shape == (2, 7)


def test_a_bare_pt_path_is_detected_as_efficientat(efficientat_file: Path) -> None:
    assert stack_of(str(efficientat_file))[0].model_type == "efficientat"


def test_efficientat_front_end_matches_an_independent_numpy_log_mel() -> None:
    from ser.data.encoders.efficientat import EfficientATMel

    wave = np.random.default_rng(1).normal(0, 0.1, 8000)
    frontend = EfficientATMel()
    mel = frontend(torch.from_numpy(wave.astype(np.float32))[None])[0].double().numpy()
    emphasised = wave[1:] - 0.97 * wave[:-1]
    padded = np.pad(emphasised, 512, mode="reflect")
    window = np.zeros(1024)
    window[112:912] = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(800) / 799)  # symmetric, centred in 1024
    n = 1 + len(emphasised) // 320
    frames = np.stack([padded[i * 320 : i * 320 + 1024] * window for i in range(n)])
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    expected = (np.log(power @ frontend.mel.double().numpy().T + 1e-5) + 4.5) / 5.0
    assert mel.shape == (128, n) and np.allclose(mel, expected.T, atol=1e-3)
    banks = frontend.mel.numpy()
    assert banks.shape == (128, 513) and banks.min() >= 0 and banks[:, 481:].max() == 0  # 0 .. 15 kHz
    assert np.all(np.diff(banks.argmax(axis=1)) >= 0) and (banks[:, 1:480].sum(axis=0) > 0).all()


# ------------------------------------------------------------------------------------------- errors
def _bad_files(tmp: Path) -> dict[str, Path]:
    text = tmp / "notes.tflite"
    text.write_text("not a model")
    h5 = tmp / "yamnet.h5"
    h5.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(64))
    wrong = tmp / "wrong.pt"
    torch.save({"layer.weight": torch.zeros(2, 2)}, wrong)
    truncated = tmp / "cut.pt"
    good = tmp / "good.pt"
    torch.save(efficientat_state_dict(0.1), good)
    truncated.write_bytes(good.read_bytes()[:4000])
    return {"text": text, "h5": h5, "wrong": wrong, "cut": truncated, "dir": tmp, "good": good}


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ("yamnet:{tmp}/missing.tflite", "does not exist"),
        ("efficientat:{tmp}/missing.pt", "does not exist"),
        ("yamnet:", "no file after"),
        ("yamnet:{dir}", "is a directory"),
        ("{text}", "is a file of no encoder format"),
        ("yamnet:{text}", "neither a TFLite"),
        ("yamnet:{h5}", "not supported yet"),
        ("yamnet:{good}", "not a YAMNet TFLite file"),
        ("efficientat:{wrong}", "not an EfficientAT state dict"),
        ("efficientat:{cut}", "cannot be read as a torch state dict"),
        ("efficientat:{yamnet}", "cannot be read as a torch state dict"),
    ],
)
def test_a_missing_or_wrong_file_is_one_line_naming_it(tmp_path: Path, yamnet_file, spec: str, words: str):
    from ser.data.encoders.source import resolve_encoder

    files = {k: str(v) for k, v in _bad_files(tmp_path).items()}
    source = spec.format(tmp=tmp_path, yamnet=yamnet_file[0], **files)
    with pytest.raises(ConfigError) as err:
        resolve_encoder(source)
    message = str(err.value)
    assert "\n" not in message and "model.encoder" in message and words in message, message
    named = source.partition(":")[2] if source.startswith(("yamnet:", "efficientat:")) else source
    assert named in message or source in message


def test_a_revision_with_a_weight_file_is_refused(yamnet_file) -> None:
    from ser.data.encoders.source import resolve_encoder

    with pytest.raises(ConfigError, match=r"model\.encoder_revision"):
        resolve_encoder(f"yamnet:{yamnet_file[0]}", revision="main")


@pytest.mark.slow
def test_ser_fit_with_a_missing_encoder_file_exits_2_with_one_line(tiny_env, tmp_path: Path, capsys) -> None:
    from ser.cli import main

    args = [
        *TINY_OVERRIDES,
        *HEAD,
        f"model.encoder=yamnet:{tmp_path}/nope.tflite",
        f"trainer.output_dir={tmp_path}",
    ]
    assert main(["fit", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("ser: error:") and "nope.tflite" in err


# ------------------------------------------------------------------------------------ frozen / cache
def _cfg(tmp_path: Path, encoder: str, *overrides: str):
    return load_config(
        overrides=[
            *TINY_OVERRIDES,
            *HEAD,
            f"model.encoder={encoder}",
            f"data.features.cache_dir={tmp_path / 'cache'}",
            f"trainer.output_dir={tmp_path / 'runs'}",
            *overrides,
        ]
    )


def test_patch_embeddings_are_cached_once_per_file_sha256(tiny_env, yamnet_file, tmp_path: Path) -> None:
    from ser.data.prepared import prepare_data

    cfg = _cfg(tmp_path, f"yamnet:{yamnet_file[0]}")
    first, second = prepare_data(cfg, progress=False), prepare_data(cfg, progress=False)
    assert (first.from_cache, second.from_cache) == (False, True) and first.kind == "embeddings"
    assert first.x.shape == (len(first.y), 1, YAMNET_BLOCKS[-1][0])
    assert np.array_equal(np.asarray(first.x), np.asarray(second.x))
    other = tmp_path / "other.tflite"
    write_tiny_yamnet(other, seed=1)  # same architecture, other weights: other states
    third = prepare_data(_cfg(tmp_path, f"yamnet:{other}"), progress=False)
    assert not third.from_cache and not np.array_equal(np.asarray(third.x), np.asarray(first.x))


def test_efficientat_needs_its_32_khz_audio(tiny_env, efficientat_file: Path, tmp_path: Path) -> None:
    from ser.data.prepared import prepare_data

    with pytest.raises(ConfigError, match=r"data\.audio\.sample_rate=32000"):
        prepare_data(_cfg(tmp_path, f"efficientat:{efficientat_file}"), progress=False)


@pytest.mark.slow
def test_a_frozen_head_trains_and_scores_through_the_encoder_file(
    tiny_env, yamnet_file, tmp_path: Path
) -> None:
    from ser.inference.predict import predict_paths
    from ser.training.fit import fit_folds

    run = fit_folds(_cfg(tmp_path, f"yamnet:{yamnet_file[0]}", "trainer.max_epochs=2"))
    ckpt = torch.load(run.folds[0].checkpoint, weights_only=True)
    assert ckpt["ser"]["kind"] == "embeddings" and ckpt["ser"]["encoder"]["model_type"] == "yamnet"
    assert not any(".encoder." in key for key in ckpt["state_dict"])  # the head only
    clip = write_wav(tmp_path / "clip.wav", seconds=1.5, kind="tone")
    assert predict_paths(run.folds[0].checkpoint, [str(clip)])[0]["label"] in {
        "neutral",
        "happy",
        "sad",
        "angry",
    }


@pytest.mark.slow
def test_fine_tuning_efficientat_keeps_its_stem_and_carries_the_encoder(tiny_env, tmp_path: Path) -> None:
    from ser.inference.predict import predict_paths
    from ser.training.fit import fit_folds

    path = write_tiny_efficientat(tmp_path / "tune.pt")
    cfg = _cfg(
        tmp_path,
        f"efficientat:{path}",
        "model.ssl_mode=finetune",
        "data.features.normalize=none",
        "data.audio.sample_rate=32000",
        "trainer.max_epochs=1",
    )
    run = fit_folds(cfg)
    ckpt = torch.load(run.folds[0].checkpoint, weights_only=True)
    tuned = {
        k.removeprefix("net.encoder.model.net."): v for k, v in ckpt["state_dict"].items() if ".encoder." in k
    }
    pretrained = torch.load(path, weights_only=True)
    assert torch.equal(tuned["features.0.0.weight"], pretrained["features.0.0.weight"])  # the stem stays
    assert not torch.equal(tuned["features.5.block.1.0.weight"], pretrained["features.5.block.1.0.weight"])
    path.unlink()  # a fine-tuned checkpoint scores without the file it started from
    clip = write_wav(tmp_path / "clip.wav", seconds=1.2, kind="tone")
    assert predict_paths(run.folds[0].checkpoint, [str(clip)])[0]["label"] in cfg.data.synthetic.labels
