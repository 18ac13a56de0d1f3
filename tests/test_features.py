"""Feature front ends against librosa, the handcrafted vector, normalisation and the on-disk cache."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import librosa
import numpy as np
import pytest
import soundfile as sf
import torch

from ser.config import AudioConfig, FeatureConfig
from ser.data.cache import cache_key, cache_root, load_features, load_waveforms
from ser.data.features import (
    HANDCRAFTED_DIM,
    MFCC,
    Deltas,
    LogMel,
    feature_shape,
    handcrafted_features,
    make_frontend,
)
from ser.data.types import Utterance

SR = 16000


def speech_like(seconds: float, f0: float, seed: int) -> np.ndarray:
    """Harmonics with vibrato, a syllable envelope, breath noise and a silent gap: like speech to an STFT."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    phase = 2 * np.pi * np.cumsum(f0 * (1 + 0.03 * np.sin(2 * np.pi * 5 * t))) / SR
    voiced = sum(np.sin(k * phase) / k for k in range(1, 12))
    envelope = np.clip(np.sin(2 * np.pi * 3 * t), 0, None) ** 2
    wave = 0.3 * voiced * envelope + 0.01 * rng.standard_normal(t.size)
    wave[: SR // 10] = 0.0  # leading silence, where the top_db floor matters
    return wave.astype(np.float32)


def write_corpus(folder: Path, n: int, seconds: float = 0.6) -> list[Utterance]:
    folder.mkdir(parents=True, exist_ok=True)
    utts = []
    for i in range(n):
        path = folder / f"utt{i}.wav"
        sf.write(path, speech_like(seconds + 0.1 * i, 120 + 20 * i, i), SR)
        utts.append(Utterance(id=f"utt{i}", path=str(path), speaker=f"s{i % 2}", label="neutral", corpus="t"))
    return utts


# ------------------------------------------------------------------------------ front ends
@pytest.mark.parametrize(
    "opts",
    [{}, {"win_length": 400, "fmin": 50.0, "fmax": 7000.0, "n_mels": 40}, {"n_fft": 1024, "hop_length": 256}],
)
def test_logmel_matches_librosa(opts):
    cfg = replace(FeatureConfig(), **opts)
    waves = np.stack([speech_like(1.0, 110, 0), speech_like(1.0, 210, 1)])
    got = make_frontend(cfg, SR, "logmel")(torch.from_numpy(waves)).numpy()
    for i, wave in enumerate(waves):
        mel = librosa.feature.melspectrogram(
            y=wave,
            sr=SR,
            n_fft=cfg.n_fft,
            hop_length=cfg.hop_length,
            win_length=cfg.win_length,
            n_mels=cfg.n_mels,
            fmin=cfg.fmin,
            fmax=cfg.fmax,
            power=2.0,
        )
        want = librosa.power_to_db(mel, top_db=80.0)
        assert got[i, 0].shape == want.shape
        np.testing.assert_allclose(got[i, 0], want, atol=2e-3)
    assert got.shape[1:] == feature_shape(cfg, "logmel", waves.shape[1])


def test_mfcc_matches_librosa():
    wave = speech_like(1.0, 150, 2)
    mfcc = MFCC(n_mfcc=40, sample_rate=SR, n_fft=512, hop_length=160, n_mels=64)
    got = mfcc(torch.from_numpy(wave)).numpy()
    db = librosa.power_to_db(
        librosa.feature.melspectrogram(y=wave, sr=SR, n_fft=512, hop_length=160, n_mels=64), top_db=80.0
    )
    want = librosa.feature.mfcc(S=db, n_mfcc=40)
    np.testing.assert_allclose(got, want, atol=5e-3)


def test_top_db_floor_is_per_utterance():
    loud, quiet = speech_like(0.5, 120, 0), 1e-3 * speech_like(0.5, 120, 0)
    db = LogMel(SR)(torch.from_numpy(np.stack([loud, quiet])))
    assert float(db[0].max() - db[0].min()) == pytest.approx(80.0, abs=1e-3)
    assert float(db[0].max() - db[1].max()) == pytest.approx(60.0, abs=0.01)
    # The quiet item is floored by its own peak (or amin = -100 dB), not by the loud item's peak - 80.
    assert float(db[1].min()) == pytest.approx(max(-100.0, float(db[1].max()) - 80.0), abs=1e-3)
    assert float(db[1].min()) < float(db[0].max()) - 80.0 - 1.0


def test_frontend_rejects_bad_settings():
    with pytest.raises(ValueError, match="handcrafted"):
        make_frontend(FeatureConfig(), SR, "handcrafted")
    with pytest.raises(ValueError, match="fmax"):
        LogMel(SR, fmax=9000.0)
    with pytest.raises(ValueError, match="n_mfcc"):
        MFCC(n_mfcc=80, sample_rate=SR, n_mels=64)


def test_handcrafted_vector_shape_and_finite():
    vec = handcrafted_features(speech_like(0.5, 140, 3), SR)
    assert vec.shape == (HANDCRAFTED_DIM,) and vec.dtype == np.float32
    assert np.isfinite(vec).all()
    mfcc0 = librosa.feature.mfcc(y=speech_like(0.5, 140, 3), sr=SR, n_mfcc=40).mean(axis=1)
    np.testing.assert_allclose(vec[:40], mfcc0, rtol=1e-4, atol=1e-3)  # documented order: MFCC first


# ---------------------------------------------------------------------------------- cache
def test_cache_root_precedence(tmp_path, monkeypatch):
    monkeypatch.setenv("SER_CACHE", str(tmp_path / "env"))
    assert cache_root(str(tmp_path / "cfg")) == tmp_path / "cfg"
    assert cache_root(None) == tmp_path / "env"
    monkeypatch.delenv("SER_CACHE")
    assert cache_root(None) == Path.home() / ".cache" / "ser"


def test_cache_key_ignores_order_but_not_settings(tmp_path):
    utts = write_corpus(tmp_path / "wav", 3)
    key = cache_key({"a": 1}, utts)
    assert cache_key({"a": 1}, utts[::-1]) == key
    assert cache_key({"a": 2}, utts) != key
    assert cache_key({"a": 1}, utts[:2]) != key


def test_waveforms_cached_then_reused(tmp_path):
    utts = write_corpus(tmp_path / "wav", 3)
    audio = AudioConfig(duration=0.5)
    first = load_waveforms(utts, audio, cache_dir=str(tmp_path / "c"), progress=False)
    assert not first.from_cache and first.waves.shape == (3, 8000) and first.waves.dtype == np.float32
    assert first.ids == ["utt0", "utt1", "utt2"] and first.skipped == []
    peaks = np.abs(first.waves).max(axis=1)  # peak-normalised (the default) before the centre crop
    assert peaks.max() == pytest.approx(1.0) and (peaks <= 1.0 + 1e-6).all()
    again = load_waveforms(utts, audio, cache_dir=str(tmp_path / "c"), progress=False)
    assert again.from_cache and again.key == first.key
    assert isinstance(again.waves, np.memmap)
    np.testing.assert_array_equal(again.waves, first.waves)
    shuffled = load_waveforms(utts[::-1], audio, cache_dir=str(tmp_path / "c"), progress=False)
    assert shuffled.from_cache and shuffled.ids == ["utt2", "utt1", "utt0"]
    np.testing.assert_array_equal(shuffled.waves, first.waves[::-1])
    leftovers = [p.name for p in (tmp_path / "c" / "waves").iterdir() if p.name.startswith(".tmp")]
    assert leftovers == []


def test_changed_setting_or_file_recomputes(tmp_path):
    utts = write_corpus(tmp_path / "wav", 2)
    cache = str(tmp_path / "c")
    base = load_waveforms(utts, AudioConfig(duration=0.5), cache_dir=cache, progress=False)
    longer = load_waveforms(utts, AudioConfig(duration=0.4), cache_dir=cache, progress=False)
    assert not longer.from_cache and longer.key != base.key and longer.waves.shape[1] == 6400
    # Rewrite one file with other content (new size and mtime): the stale entry must not be read.
    sf.write(utts[1].path, speech_like(0.3, 300, 9), SR)
    edited = load_waveforms(utts, AudioConfig(duration=0.5), cache_dir=cache, progress=False)
    assert not edited.from_cache and edited.key != base.key
    assert not np.array_equal(edited.waves[1], base.waves[1])
    np.testing.assert_array_equal(edited.waves[0], base.waves[0])
    # Touching alone (same bytes, new mtime) also gives a new key.
    st = os.stat(utts[0].path)
    os.utime(utts[0].path, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    touched = load_waveforms(utts, AudioConfig(duration=0.5), cache_dir=cache, progress=False)
    assert not touched.from_cache and touched.key != edited.key


def test_broken_files_are_skipped_with_reason(tmp_path):
    utts = write_corpus(tmp_path / "wav", 2)
    empty, text = tmp_path / "wav" / "empty.wav", tmp_path / "wav" / "text.wav"
    empty.write_bytes(b"")
    text.write_text("this is not audio\n")
    broken = [Utterance(id=p.stem, path=str(p), speaker="s9", label="sad", corpus="t") for p in (empty, text)]
    loaded = load_waveforms(utts + broken, AudioConfig(duration=0.5), cache_dir=str(tmp_path), progress=False)
    assert loaded.ids == ["utt0", "utt1"] and loaded.waves.shape[0] == 2
    reasons = {Path(s.path).name: s.reason for s in loaded.skipped}
    assert set(reasons) == {"empty.wav", "text.wav"}
    assert "empty" in reasons["empty.wav"] and reasons["text.wav"]
    cached = load_features(
        utts + broken, AudioConfig(duration=0.5), FeatureConfig(), "logmel", str(tmp_path), progress=False
    )
    assert cached.ids == ["utt0", "utt1"] and len(cached.skipped) == 2


def test_features_cached_and_match_frontend(tmp_path):
    utts = write_corpus(tmp_path / "wav", 3)
    audio, feat, cache = AudioConfig(duration=0.5), FeatureConfig(), str(tmp_path / "c")
    first = load_features(utts, audio, feat, "logmel", cache_dir=cache, progress=False)
    assert not first.from_cache and first.compute_seconds > 0
    assert first.x.shape == (3, 1, 64, 1 + int(0.5 * SR) // feat.hop_length)  # 64 mels, centred frames
    waves = load_waveforms(utts, audio, cache_dir=cache, progress=False)
    assert waves.from_cache  # load_features went through the waveform cache
    direct = make_frontend(feat, SR, "logmel")(torch.from_numpy(np.array(waves.waves))).numpy()
    np.testing.assert_allclose(first.x, direct, atol=1e-5)
    again = load_features(utts, audio, feat, "logmel", cache_dir=cache, progress=False)
    assert again.from_cache and again.compute_seconds == 0.0
    np.testing.assert_array_equal(again.x, first.x)
    # Settings that do not change the numbers (normalisation, cache dir) keep the key; others change it.
    same = load_features(utts, audio, replace(feat, normalize="train"), "logmel", cache, progress=False)
    assert same.from_cache
    more_mels = load_features(utts, audio, replace(feat, n_mels=32), "logmel", cache, progress=False)
    assert not more_mels.from_cache and more_mels.x.shape == (3, 1, 32, first.x.shape[-1])
    mfcc = load_features(utts, audio, feat, "mfcc", cache, progress=False)
    assert mfcc.x.shape == (3, 1, 40, first.x.shape[-1]) and mfcc.key != first.key
    ref = load_features(utts, audio, feat, "logmel", cache, progress=False, backend="librosa")
    assert ref.key != first.key
    np.testing.assert_allclose(ref.x, first.x, atol=2e-3)


def test_handcrafted_features_cached(tmp_path):
    utts = write_corpus(tmp_path / "wav", 2, seconds=0.4)
    audio = AudioConfig(duration=0.4)
    first = load_features(utts, audio, FeatureConfig(), "handcrafted", str(tmp_path), progress=False)
    assert first.x.shape == (2, HANDCRAFTED_DIM) and np.isfinite(first.x).all()
    # handcrafted ignores the spectrogram settings, so another n_mels reuses the entry.
    again = load_features(utts, audio, FeatureConfig(n_mels=32), "handcrafted", str(tmp_path), progress=False)
    assert again.from_cache
    np.testing.assert_array_equal(again.x, first.x)


def test_load_features_rejects_unknown_kind(tmp_path):
    with pytest.raises(ValueError, match="auto"):
        load_features([], AudioConfig(), FeatureConfig(), "auto", str(tmp_path), progress=False)
    with pytest.raises(ValueError, match="twice"):
        u = Utterance(id="a", path="x.wav", speaker="s", label="l", corpus="t")
        load_waveforms([u, u], AudioConfig(), cache_dir=str(tmp_path), progress=False)


@pytest.mark.parametrize("half_width", [1, 2, 4])
def test_deltas_match_librosa_and_stack_as_channels(half_width):
    x = torch.randn(2, 1, 6, 40, generator=torch.Generator().manual_seed(0))
    out = Deltas(2, half_width=half_width)(x)
    assert out.shape == (2, 3, 6, 40)
    torch.testing.assert_close(out[:, :1], x)
    width = 2 * half_width + 1
    d1 = librosa.feature.delta(x.numpy(), width=width, order=1, mode="nearest", axis=-1)
    d2 = librosa.feature.delta(d1, width=width, order=1, mode="nearest", axis=-1)
    np.testing.assert_allclose(out[:, 1:2].numpy(), d1, atol=1e-5)
    np.testing.assert_allclose(out[:, 2:3].numpy(), d2, atol=1e-5)
    ramp = torch.arange(40.0).expand(1, 1, 3, 40)
    assert torch.allclose(Deltas(1)(ramp)[0, 1, :, 2:-2], torch.ones(3, 36))  # slope of a ramp is 1
    with pytest.raises(ValueError, match="deltas"):
        Deltas(3)
