"""openSMILE features (eGeMAPS, GeMAPS, ComParE): computed by audEERING's package on the cached waveforms,
cached like every feature, standardised per speaker, and usable by the vector families (svm, feature_mlp)
and by `ser predict`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import opensmile
import pytest
import soundfile as sf

from ser.cli import main
from ser.config import AudioConfig, FeatureConfig
from ser.data.cache import load_features, load_waveforms
from ser.data.types import Utterance

SR = 16000


def voice(seconds: float, f0: float, seed: int) -> np.ndarray:
    """Harmonics with vibrato under a syllable envelope, and breath noise: voiced frames for openSMILE."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    phase = 2 * np.pi * np.cumsum(f0 * (1 + 0.03 * np.sin(2 * np.pi * 5 * t))) / SR
    wave = 0.3 * sum(np.sin(k * phase) / k for k in range(1, 10)) * np.sin(2 * np.pi * 2 * t) ** 2
    return (wave + 0.005 * rng.standard_normal(t.size)).astype(np.float32)


def corpus(folder: Path, n: int) -> list[Utterance]:
    folder.mkdir(parents=True, exist_ok=True)
    utts = []
    for i in range(n):
        path = folder / f"u{i}.wav"
        sf.write(path, voice(0.8, 110 + 30 * i, i), SR)
        utts.append(Utterance(id=f"u{i}", path=str(path), speaker=f"s{i % 2}", label="neutral", corpus="t"))
    return utts


def test_egemaps_are_opensmiles_functionals_of_the_cached_clip_and_cached(tmp_path: Path) -> None:
    utts, audio, cache = corpus(tmp_path / "wav", 3), AudioConfig(duration=1.0), str(tmp_path / "c")
    first = load_features(utts, audio, FeatureConfig(), "egemaps", cache, progress=False)
    assert first.x.shape == (3, 88) and first.x.dtype == np.float32 and not first.from_cache
    # the reference: audEERING's own extractor on the fixed-length waveform every feature is computed from
    waves = load_waveforms(utts, audio, cache_dir=cache, progress=False).waves
    smile = opensmile.Smile(opensmile.FeatureSet.eGeMAPSv02, opensmile.FeatureLevel.Functionals)
    reference = np.stack([smile.process_signal(np.asarray(w), SR).to_numpy()[0] for w in waves])
    np.testing.assert_allclose(first.x, reference, rtol=1e-6)
    assert np.abs(first.x[0] - first.x[2]).max() > 1.0  # another pitch gives other numbers
    again = load_features(utts, audio, FeatureConfig(n_mels=32), "egemaps", cache, progress=False)
    assert again.from_cache and again.key == first.key  # spectrogram settings do not apply
    gemaps = load_features(utts, audio, FeatureConfig(), "gemaps", cache, progress=False)
    assert gemaps.x.shape == (3, 62) and gemaps.key != first.key


@pytest.mark.slow
def test_compare_has_6373_functionals(tmp_path: Path) -> None:
    utts = corpus(tmp_path / "wav", 2)
    got = load_features(utts, AudioConfig(duration=1.0), FeatureConfig(), "compare", str(tmp_path), False)
    assert got.x.shape == (2, 6373) and np.isfinite(got.x).all()


def test_speaker_standardised_egemaps_train_svm_and_feature_mlp(tiny_cfg_factory, tmp_path: Path) -> None:
    from ser.data.prepared import prepare_data
    from ser.inference.scorer import load_scorer
    from ser.training.fit import fit_folds

    cfg = tiny_cfg_factory("model.name=svm", "data.features.kind=egemaps", "data.features.normalize=speaker")
    prepared = prepare_data(cfg, progress=False)
    assert prepared.kind == "egemaps" and prepared.x.shape[1:] == (88,)
    for speaker in set(prepared.speakers):  # each speaker's rows: mean 0, sd 1 per functional
        rows = prepared.x[np.asarray(prepared.speakers) == speaker]
        np.testing.assert_allclose(rows.mean(axis=0), 0.0, atol=1e-4)
        varying = rows.std(axis=0) > 0.1  # functionals constant for a speaker stay 0
        np.testing.assert_allclose(rows.std(axis=0, ddof=1)[varying], 1.0, atol=1e-3)
    svm = fit_folds(cfg.copy(), prepared=prepared)
    assert svm.metrics["feature"] == "egemaps" and 0.0 <= svm.metrics["folds"][0]["test"]["uar"] <= 1.0
    mlp = fit_folds(
        tiny_cfg_factory(
            "model.name=feature_mlp",
            "data.features.kind=egemaps",
            "data.features.normalize=speaker",
            "trainer.run_name=egemaps_mlp",
        )
    )
    scorer = load_scorer(mlp.folds[0].checkpoint)  # ser predict: openSMILE on the windows it scores
    windows = np.stack([voice(1.0, 120, 0), voice(1.0, 200, 1)])
    assert tuple(scorer.features(windows).shape) == (2, 88)
    probs = scorer.probabilities(windows)
    assert probs.shape == (2, 4) and np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["fit", "data.features.kind=egemaps"], "model 'emotion_detector' takes logmel or mfcc"),
        (["fit", "model.name=svm", "data.features.kind=egemap"], "did you mean 'egemaps'"),
        (["fit", "model.name=svm", "data.features.kind=egemaps", "data.augment.noise_p=0.5"], "egemaps"),
    ],
)
def test_bad_opensmile_configs_are_one_line(tiny_env, argv, needle, capsys) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.strip().startswith("ser: error:") and needle in err, err
