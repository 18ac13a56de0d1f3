"""The synthetic corpus: determinism, signal sanity, acoustic correlates, real naming, cached materialise."""

from __future__ import annotations

import csv
import re
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import librosa
import numpy as np
import pytest
import soundfile as sf
from omegaconf import OmegaConf

from ser.config import SyntheticConfig
from ser.data import synthetic
from ser.data.synthetic import (
    PEAK,
    SPEAKER_REGEX,
    NamingWarning,
    materialize,
    speaker_ids,
    synthesize,
    synthesize_one,
    write_corpus,
)

SR = 16000
TINY = SyntheticConfig(speakers=2, per_label=2, labels=["sad", "angry"], duration=1.0)


def _cfg(**kw) -> SyntheticConfig:
    base = dict(speakers=2, per_label=2, labels=["sad", "angry"], duration=0.6)
    base.update(kw)
    return SyntheticConfig(**base)


def _f0_and_db(wave: np.ndarray) -> tuple[float, float]:
    """Median YIN F0 over the loud frames, and the RMS level of those frames in dB."""
    frame, hop = 1024, 256
    f0 = librosa.yin(wave.astype(np.float64), fmin=50, fmax=500, sr=SR, frame_length=frame, hop_length=hop)
    rms = librosa.feature.rms(y=wave, frame_length=frame, hop_length=hop)[0][: f0.size]
    loud = rms > 0.3 * rms.max()
    return float(np.median(f0[loud])), float(20 * np.log10(np.sqrt(np.mean(rms[loud] ** 2))))


# ------------------------------------------------------------------------------------ determinism


def test_same_config_gives_bit_identical_audio_and_another_seed_differs():
    a, b = synthesize(TINY), synthesize(TINY)
    assert [(u.speaker, u.label, u.index) for u in a] == [(u.speaker, u.label, u.index) for u in b]
    assert all(np.array_equal(x.wave, y.wave) for x, y in zip(a, b))
    other = synthesize(SyntheticConfig(**{**vars(TINY), "seed": 1}))
    assert not any(x.wave.shape == y.wave.shape and np.allclose(x.wave, y.wave) for x, y in zip(a, other))


def test_adding_speakers_labels_and_utterances_keeps_existing_audio():
    small = _cfg()
    bigger = _cfg(speakers=3, per_label=3, labels=["neutral", "angry", "sad"])
    before = {(u.speaker, u.label, u.index): u.wave for u in synthesize(small)}
    after = {(u.speaker, u.label, u.index): u.wave for u in synthesize(bigger)}
    assert set(before) < set(after)
    assert all(np.array_equal(wave, after[key]) for key, wave in before.items())


# ------------------------------------------------------------------------------------ the signal


def test_waves_are_finite_float32_with_bounded_peak_and_roughly_the_asked_duration():
    cfg = _cfg(labels=list(synthetic.PROFILES), per_label=1, duration=1.5)
    for u in synthesize(cfg):
        assert u.wave.dtype == np.float32 and u.wave.ndim == 1
        assert np.isfinite(u.wave).all()
        assert 0.05 < np.abs(u.wave).max() <= PEAK + 1e-6, u.label
        assert 0.5 * 1.5 < u.wave.size / SR < 2.5 * 1.5, u.label


def test_speaker_ids_alternate_gender_and_match_the_speaker_regex():
    cfg = _cfg(speakers=3)
    assert speaker_ids(cfg) == ["s01", "s02", "s03"]
    genders = [synthetic.speaker_gender(i) for i in range(3)]
    assert genders == ["m", "f", "m"]
    match = re.search(SPEAKER_REGEX, "s02-f-007")
    assert match and match["speaker"] == "s02" and match["gender"] == "f"
    assert {(u.speaker, u.gender) for u in synthesize(cfg)} == {("s01", "m"), ("s02", "f"), ("s03", "m")}


def test_female_speaker_is_higher_pitched_than_male():
    cfg = _cfg(duration=1.5)
    male = np.median([_f0_and_db(synthesize_one(cfg, 0, "neutral", i))[0] for i in range(3)])
    female = np.median([_f0_and_db(synthesize_one(cfg, 1, "neutral", i))[0] for i in range(3)])
    assert 80 < male < 170 and 150 < female < 300
    assert female > 1.35 * male


@pytest.mark.parametrize("speaker", [0, 1])
def test_angry_is_higher_louder_and_brighter_than_sad_for_the_same_speaker(speaker):
    cfg = _cfg(duration=1.5)

    def stats(label: str) -> np.ndarray:
        rows = []
        for i in range(3):
            wave = synthesize_one(cfg, speaker, label, i)
            f0, db = _f0_and_db(wave)
            power = np.abs(np.fft.rfft(wave)) ** 2
            freqs = np.fft.rfftfreq(wave.size, 1 / SR)
            rows.append((f0, db, 10 * np.log10(power[freqs > 1000].sum() / power[freqs <= 1000].sum())))
        return np.mean(rows, axis=0)

    (f0_a, db_a, hf_a), (f0_s, db_s, hf_s) = stats("angry"), stats("sad")
    assert f0_a > 1.2 * f0_s
    assert db_a > db_s + 6.0
    assert hf_a > hf_s + 3.0  # flatter spectral tilt


def test_unknown_label_is_rejected_with_the_known_ones():
    with pytest.raises(ValueError, match="unknown label.*'bored'.*surprised"):
        synthesize(_cfg(labels=["sad", "bored"]))


@pytest.mark.parametrize(
    "override, key", [({"duration": 0.0}, "duration"), ({"variability": -1.0}, "variability")]
)
def test_invalid_numbers_are_rejected_naming_the_key(override, key):
    with pytest.raises(ValueError, match=f"synthetic.{key}"):
        synthesize(_cfg(**override))


# ------------------------------------------------------------------------------------ real naming

SENTENCES = "IEO|TIE|IOM|IWW|TAI|MTI|IWL|ITH|DFA|ITS|TSI|WSI"
NAMING = {
    "folder": r"^(neutral|calm|surprised)/s\d{2}-[mf]-\d{3}\.wav$",
    "ravdess": r"^Actor_(\d{2})/03-01-0[1-8]-0[12]-0[12]-0[12]-(\d{2})\.wav$",
    "crema_d": rf"^AudioWAV/10\d\d_({SENTENCES})_(ANG|DIS|FEA|HAP|NEU|SAD)_(XX|LO|MD|HI|X)\.wav$",
    "tess": r"^(OAF|YAF)_(angry|disgust|fear|happy|neutral|pleasant_surprise|sad)/\1_[a-z]+_"
    r"(angry|disgust|fear|happy|neutral|ps|sad)\.wav$",
}
COUNTS = {"folder": 12, "ravdess": 12, "crema_d": 4, "tess": 8}  # 2 spk x (3, 3, 1, 2) labels x 2
DROPS = {"folder": None, "ravdess": None, "crema_d": r"\['calm', 'surprised'\]", "tess": r"\['calm'\]"}


@pytest.mark.parametrize("style", sorted(NAMING))
def test_write_corpus_uses_the_real_naming_and_16_bit_wavs(tmp_path, style):
    cfg = _cfg(labels=["neutral", "calm", "surprised"], duration=0.4)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        paths = write_corpus(tmp_path, style, cfg)
    messages = [str(w.message) for w in caught if issubclass(w.category, NamingWarning)]
    if DROPS[style]:
        assert any(re.search(DROPS[style], m) for m in messages), messages
    wavs = [p for p in paths if p.suffix == ".wav"]
    assert len(wavs) == len(set(wavs)) == COUNTS[style]
    assert sorted(wavs) == sorted(tmp_path.rglob("*.wav"))
    for path in wavs:
        rel = path.relative_to(tmp_path).as_posix()
        match = re.match(NAMING[style], rel)
        assert match, rel
        if style == "ravdess":
            assert match[1] == match[2], rel  # folder actor == name actor
        info = sf.info(str(path))
        assert info.subtype == "PCM_16" and info.samplerate == SR and info.channels == 1
    if style == "tess":
        for path in wavs:
            folder, suffix = path.parent.name.split("_", 1)[1], path.stem.rsplit("_", 1)[1]
            assert suffix == {"pleasant_surprise": "ps"}.get(folder, folder)
    if style == "crema_d":
        rows = list(csv.DictReader((tmp_path / "VideoDemographics.csv").open()))
        assert list(rows[0]) == ["ActorID", "Age", "Sex", "Race", "Ethnicity"]
        assert [(r["ActorID"], r["Sex"]) for r in rows] == [("1001", "Male"), ("1002", "Female")]


def test_ravdess_neutral_has_normal_intensity_only_and_per_label_is_capped_with_a_warning(tmp_path):
    cfg = _cfg(speakers=1, per_label=9, labels=["neutral", "angry"], duration=0.3)
    with pytest.warns(NamingWarning) as caught:
        paths = write_corpus(tmp_path, "ravdess", cfg)
    text = " ".join(str(w.message) for w in caught)
    assert "neutral" in text and "angry" in text
    fields = [p.stem.split("-") for p in paths]
    neutral = [f for f in fields if f[2] == "01"]
    angry = [f for f in fields if f[2] == "05"]
    assert len(neutral) == 4 and len(angry) == 8 and len({tuple(f) for f in fields}) == 12
    assert {f[3] for f in neutral} == {"01"} and {f[3] for f in angry} == {"01", "02"}


def test_tess_uses_two_female_speakers(tmp_path):
    with pytest.warns(NamingWarning, match="two speakers"):
        paths = write_corpus(
            tmp_path, "tess", _cfg(speakers=1, per_label=1, labels=["neutral"], duration=1.5)
        )
    assert sorted(p.parent.name for p in paths) == ["OAF_neutral", "YAF_neutral"]
    f0s = [_f0_and_db(sf.read(str(p), dtype="float32")[0])[0] for p in paths]
    assert min(f0s) > 150


def test_unknown_style_lists_the_styles(tmp_path):
    with pytest.raises(ValueError, match="folder.*ravdess.*crema_d.*tess"):
        write_corpus(tmp_path, "nosuchcorpus", _cfg())


# ------------------------------------------------------------------------------------ materialize


def test_materialize_writes_once_and_reuses_a_complete_directory(tmp_path, monkeypatch):
    cfg = _cfg(duration=0.4)
    root = materialize(cfg, cache_dir=str(tmp_path / "cache"))
    assert root.parent == tmp_path / "cache" / "synthetic" and (root / "COMPLETE").is_file()
    wavs = sorted(root.rglob("*.wav"))
    assert len(wavs) == 2 * 2 * 2
    assert [p.relative_to(root).as_posix() for p in wavs][0] == "angry/s01-m-000.wav"
    mtimes = [p.stat().st_mtime_ns for p in wavs]

    def boom(*args, **kwargs):
        raise AssertionError("materialize regenerated a complete corpus")

    monkeypatch.setattr(synthetic, "write_corpus", boom)
    node = OmegaConf.structured(cfg)  # the pipeline passes omegaconf nodes: same hash
    assert materialize(node, cache_dir=str(tmp_path / "cache")) == root
    assert [p.stat().st_mtime_ns for p in wavs] == mtimes
    assert [p.name for p in root.parent.iterdir() if p.name.startswith(".")] == []  # no temp dirs left


def test_materialize_honours_ser_cache_and_separates_configs(tmp_path, monkeypatch):
    monkeypatch.setenv("SER_CACHE", str(tmp_path / "env"))
    a = materialize(_cfg(duration=0.3, per_label=1))
    b = materialize(_cfg(duration=0.3, per_label=1, seed=7))
    assert a.parent == b.parent == tmp_path / "env" / "synthetic" and a != b
    assert not np.array_equal(
        sf.read(str(a / "sad/s01-m-000.wav"))[0], sf.read(str(b / "sad/s01-m-000.wav"))[0]
    )


def test_concurrent_materialize_calls_agree_and_leave_no_temp_dirs(tmp_path):
    cfg = _cfg(duration=0.3, per_label=1)
    with ThreadPoolExecutor(3) as pool:
        roots = list(pool.map(lambda _: materialize(cfg, cache_dir=str(tmp_path)), range(3)))
    assert len(set(roots)) == 1 and (roots[0] / "COMPLETE").is_file()
    assert [p.name for p in (tmp_path / "synthetic").iterdir()] == [roots[0].name]
    assert len(list(roots[0].rglob("*.wav"))) == 4


def test_materialize_replaces_an_incomplete_leftover(tmp_path):
    cfg = _cfg(duration=0.3, per_label=1)
    leftover = tmp_path / "synthetic" / synthetic.config_hash(cfg)
    (leftover / "sad").mkdir(parents=True)
    (leftover / "sad" / "junk.wav").write_bytes(b"half-written")
    root = materialize(cfg, cache_dir=str(tmp_path))
    assert root == leftover and (root / "COMPLETE").is_file()
    assert not (root / "sad" / "junk.wav").exists() and len(list(root.rglob("*.wav"))) == 4


# ------------------------------------------------------------------------------------ real adapter


def test_ravdess_adapter_reads_the_synthetic_ravdess_corpus(tmp_path):
    corpora = pytest.importorskip(
        "ser.data.corpora", reason="corpus adapters (ser.data.corpora) not importable"
    )
    from ser.config import CorpusSpec

    cfg = _cfg(speakers=3, per_label=3, labels=["neutral", "happy", "sad"], duration=0.3)
    write_corpus(tmp_path, "ravdess", cfg)
    scan = corpora.scan_corpus(CorpusSpec(name="ravdess", root=str(tmp_path)))
    assert len(scan.utterances) == 3 * 3 * 3 and scan.skipped == []
    labels = [u.label for u in scan.utterances]
    assert {lab: labels.count(lab) for lab in set(labels)} == {"neutral": 9, "happy": 9, "sad": 9}
    genders = {u.speaker: u.gender for u in scan.utterances}
    assert len(genders) == 3 and sorted(genders.values()) == ["f", "m", "m"]


def test_write_corpus_returns_paths_under_out(tmp_path):
    paths = write_corpus(tmp_path / "new" / "dir", "folder", _cfg(per_label=1, duration=0.3))
    assert all(isinstance(p, Path) and p.is_file() and (tmp_path / "new" / "dir") in p.parents for p in paths)
