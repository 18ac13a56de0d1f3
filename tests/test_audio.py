"""Audio loading: formats by content, downmix, resampling, normalisation and every bad-file reason."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import soundfile as sf

from ser.data.audio import AudioError, audio_info, fix_length, load_audio, normalize_wave, validate_audio


def test_loads_mono_float32_at_native_length(tmp_path, wav_writer):
    path = wav_writer(tmp_path / "a.wav", seconds=0.25, subtype="PCM_16")
    wave = load_audio(path)
    assert wave.dtype == np.float32 and wave.ndim == 1 and wave.shape == (4000,)
    assert np.abs(wave).max() == pytest.approx(0.3, abs=0.01)


@pytest.mark.parametrize("fmt", ["FLAC", "AIFF"])
def test_format_is_detected_by_content_not_extension(tmp_path, wav_writer, fmt):
    path = wav_writer(tmp_path / "really_not_wav.wav", format=fmt, subtype="PCM_16")
    assert audio_info(path)["format"] == fmt
    reference = sf.read(str(path), dtype="float32")[0]
    np.testing.assert_array_equal(load_audio(path), reference)


def test_stereo_is_downmixed_by_mean(tmp_path):
    t = np.arange(4000) / 16000
    left = 0.5 * np.sin(2 * np.pi * 300 * t)
    right = 0.2 * np.sin(2 * np.pi * 700 * t)
    path = tmp_path / "stereo.wav"
    sf.write(str(path), np.stack([left, right], axis=1).astype(np.float32), 16000, subtype="FLOAT")
    np.testing.assert_allclose(load_audio(path), (left + right) / 2, atol=1e-6)
    assert audio_info(path)["channels"] == 2


@pytest.mark.parametrize("rate", [44100, 48000, 8000])
def test_resampled_to_target_rate_with_right_length_and_pitch(tmp_path, wav_writer, rate):
    path = wav_writer(tmp_path / "tone.wav", seconds=0.5, sample_rate=rate, kind="tone", subtype="FLOAT")
    wave = load_audio(path, sample_rate=16000)
    assert wave.dtype == np.float32
    assert wave.shape == (8000,)
    spectrum = np.abs(np.fft.rfft(wave))
    assert np.argmax(spectrum) * 16000 / len(wave) == pytest.approx(440, abs=2)


def test_sample_rate_none_keeps_native_rate(tmp_path, wav_writer):
    path = wav_writer(tmp_path / "a.wav", seconds=0.5, sample_rate=22050)
    assert load_audio(path, sample_rate=None).shape == (11025,)


def test_peak_normalisation(tmp_path, wav_writer):
    path = wav_writer(tmp_path / "a.wav", amplitude=0.05)
    wave = load_audio(path, normalize="peak")
    assert np.abs(wave).max() == pytest.approx(1.0, abs=1e-6)


def test_rms_normalisation_hits_target_and_never_exceeds_one(tmp_path, wav_writer):
    path = wav_writer(tmp_path / "a.wav", amplitude=0.01)
    wave = load_audio(path, normalize="rms")
    assert np.sqrt(np.mean(wave.astype(np.float64) ** 2)) == pytest.approx(0.1, rel=1e-3)
    spiky = np.zeros(1000, np.float32)
    spiky[10] = 0.001  # RMS 3e-5: reaching 0.1 would need a gain of 3000 and clip
    out = normalize_wave(spiky, "rms")
    assert np.abs(out).max() == pytest.approx(1.0) and out.dtype == np.float32


def test_unknown_normalisation_is_rejected(tmp_path, wav_writer):
    with pytest.raises(ValueError, match="normalize"):
        load_audio(wav_writer(tmp_path / "a.wav"), normalize="loud")


def _truncated(tmp_path, wav_writer):
    good = wav_writer(tmp_path / "good.wav", seconds=0.5, subtype="PCM_16")
    data = good.read_bytes()
    path = tmp_path / "truncated.wav"
    path.write_bytes(data[: len(data) - 3001])
    return path


BAD_FILES = {
    "missing": (lambda tmp, w: tmp / "nope.wav", "does not exist"),
    "text": (lambda tmp, w: _text(tmp / "text.wav"), "unreadable"),
    "empty": (lambda tmp, w: _empty(tmp / "empty.wav"), r"empty file \(0 bytes\)"),
    "truncated": (_truncated, "truncated"),
    "zero_frames": (lambda tmp, w: w(tmp / "zero.wav", seconds=0.0), "zero frames"),
    "silent": (lambda tmp, w: w(tmp / "silent.wav", kind="silence"), r"silent \(peak \d"),
    "nan": (lambda tmp, w: _nan(tmp / "nan.wav"), "NaN"),
    "truncated_flac": (lambda tmp, w: _cut_flac(tmp, w), "corrupt|truncated"),
}


def _text(path):
    path.write_text("this is not audio\n" * 20)
    return path


def _empty(path):
    path.write_bytes(b"")
    return path


def _nan(path):
    data = np.full(3200, 0.2, np.float32)
    data[100] = np.nan
    sf.write(str(path), data, 16000, subtype="FLOAT")
    return path


def _cut_flac(tmp, writer):
    good = writer(tmp / "good.flac", seconds=1.0, format="FLAC", subtype="PCM_16")
    path = tmp / "cut.flac"
    path.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    return path


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_files_raise_audio_error_with_reason(tmp_path, wav_writer, case):
    make, reason = BAD_FILES[case]
    path = make(tmp_path, wav_writer)
    with pytest.raises(AudioError, match=reason) as info:
        load_audio(path)
    assert info.value.path == str(path)
    assert str(info.value).startswith(f"{path}: ")
    with pytest.raises(AudioError, match=reason):
        validate_audio(path)


def test_audio_error_is_a_value_error_and_pickles():
    err = AudioError("/x.wav", "silent (peak 0)")
    assert isinstance(err, ValueError)
    again = pickle.loads(pickle.dumps(err))
    assert (again.path, again.reason, str(again)) == ("/x.wav", "silent (peak 0)", "/x.wav: silent (peak 0)")


def test_audio_info_reads_header(tmp_path, wav_writer):
    path = wav_writer(tmp_path / "a.wav", seconds=0.5, sample_rate=48000, channels=2, subtype="PCM_24")
    info = audio_info(path)
    assert info["sample_rate"] == 48000 and info["channels"] == 2 and info["frames"] == 24000
    assert info["duration"] == pytest.approx(0.5) and info["format"] == "WAV"
    assert validate_audio(path)["frames"] == 24000
    with pytest.raises(AudioError, match="does not exist"):
        audio_info(tmp_path / "missing.wav")


def test_fix_length_crops_and_pads():
    wave = np.arange(10, dtype=np.float32)
    np.testing.assert_array_equal(fix_length(wave, 4, "center"), [3, 4, 5, 6])
    np.testing.assert_array_equal(fix_length(wave, 4, "start"), [0, 1, 2, 3])
    np.testing.assert_array_equal(fix_length(wave[:3], 6, "start"), [0, 1, 2, 0, 0, 0])
    np.testing.assert_array_equal(fix_length(wave[:3], 6, "center"), [0, 0, 1, 2, 0, 0])
    assert fix_length(wave, 10).shape == (10,)
    assert fix_length(np.ones((2, 5), np.float32), 7).shape == (2, 7)
    with pytest.raises(ValueError, match="crop"):
        fix_length(wave, 4, "end")
