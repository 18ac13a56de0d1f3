"""Streaming prediction: chunked pushing matches whole-signal scoring, smoothing, sources, `ser live`."""

from __future__ import annotations

import argparse
import io
import json
import time

import numpy as np
import pytest
import soundfile as sf

from ser.cli.live import add_live_parser
from ser.inference.scorer import load_scorer, score_wave
from ser.inference.sources import LiveInputError, file_chunks, microphone_chunks, stdin_chunks
from ser.inference.streaming import RingBuffer, StreamingScorer


@pytest.fixture(scope="module")
def scorer(tiny_run):
    return load_scorer(tiny_run.folds[0].checkpoint)


def peaky_wave(seconds: float, sr: int, seed: int = 0, every: float = 0.05) -> np.ndarray:
    """Noise with a full-scale sample every `every` s, so every window (and the whole signal) has peak 1:
    per-window peak normalisation (streaming) and whole-file normalisation (score_wave) then coincide."""
    wave = np.random.default_rng(seed).uniform(-0.5, 0.5, int(round(seconds * sr))).astype(np.float32)
    wave[:: int(every * sr)] = 1.0
    return wave


def push_in_random_chunks(streamer: StreamingScorer, wave: np.ndarray, seed: int = 1) -> list:
    rng = np.random.default_rng(seed)
    results, offset = [], 0
    while offset < wave.shape[0]:
        size = int(rng.integers(1, 7000))
        results += streamer.push(wave[offset : offset + size])
        offset += size
    return results + streamer.flush()


def assert_same_windows(results: list, reference: dict) -> None:
    assert [round(r.start, 3) for r in results] == [w["start"] for w in reference["windows"]]
    assert [round(r.end, 3) for r in results] == [w["end"] for w in reference["windows"]]
    for r, w in zip(results, reference["windows"]):
        got = np.array([r.probabilities[k] for k in w["probabilities"]])
        assert np.allclose(got, list(w["probabilities"].values()), atol=2e-4)


@pytest.mark.parametrize(
    "seconds, window, hop",
    [(3.37, 1.0, 0.25), (2.0, None, None), (0.6, 1.0, 0.5), (3.1, 0.5, 0.8)],
    ids=["tail-window", "defaults", "shorter-than-window", "hop-over-window"],
)
def test_chunked_push_matches_score_wave(scorer, seconds, window, hop) -> None:
    wave = peaky_wave(seconds, scorer.sample_rate)
    assert scorer.audio_normalize == "peak"  # the premise of peaky_wave
    reference = score_wave(scorer, wave, window=window, hop=hop)
    streamer = StreamingScorer(scorer, window=window, hop=hop, smoothing=1.0)
    results = push_in_random_chunks(streamer, wave)
    assert len(results) == len(reference["windows"]) >= 1
    assert_same_windows(results, reference)
    assert [r.index for r in results] == list(range(len(results)))


def test_windows_are_returned_as_soon_as_complete(scorer) -> None:
    sr = scorer.sample_rate
    streamer = StreamingScorer(scorer, window=1.0, hop=0.5)
    wave = peaky_wave(2.0, sr)
    assert streamer.push(wave[: sr - 1]) == []
    first = streamer.push(wave[sr - 1 : sr])  # the sample that completes window [0, 1)
    assert [(r.start, r.end) for r in first] == [(0.0, 1.0)]
    assert [r.start for r in streamer.push(wave[sr:])] == [0.5, 1.0]
    assert streamer.flush() == []  # the last window already ends at the last sample


def test_each_window_is_normalised_on_its_own(scorer) -> None:
    sr = scorer.sample_rate
    wave = peaky_wave(1.0, sr)
    loud = StreamingScorer(scorer, window=1.0, hop=1.0).push(wave)[0]
    quiet = StreamingScorer(scorer, window=1.0, hop=1.0).push(0.01 * wave)[0]
    assert quiet.probabilities == pytest.approx(loud.probabilities, abs=1e-5)
    assert not loud.silent
    silent = StreamingScorer(scorer, window=1.0, hop=1.0).push(np.zeros(sr, np.float32))[0]
    assert silent.silent


def test_smoothing(scorer) -> None:
    wave = np.concatenate([peaky_wave(1.5, scorer.sample_rate, seed=s) for s in range(3)])
    raw = push_in_random_chunks(StreamingScorer(scorer, window=1.0, hop=0.25, smoothing=1.0), wave)
    for r in raw:  # alpha = 1: the smoothed track is the raw one
        assert r.smoothed == r.probabilities
        assert r.smoothed_label == r.label
    alpha = 0.3
    smooth = push_in_random_chunks(StreamingScorer(scorer, window=1.0, hop=0.25, smoothing=alpha), wave)
    labels = list(raw[0].probabilities)
    p = np.array([[r.probabilities[k] for k in labels] for r in raw])
    expected = [p[0]]
    for row in p[1:]:
        expected.append(alpha * row + (1 - alpha) * expected[-1])
    got = np.array([[r.smoothed[k] for k in labels] for r in smooth])
    assert np.allclose(got, np.array(expected), atol=1e-5)
    assert np.abs(np.diff(got, axis=0)).sum() < np.abs(np.diff(p, axis=0)).sum()  # smoother than raw
    for r in smooth:
        assert sum(r.smoothed.values()) == pytest.approx(1.0, abs=1e-4)


def test_latency_reported(scorer) -> None:
    results = push_in_random_chunks(StreamingScorer(scorer, 1.0, 0.5), peaky_wave(2.5, scorer.sample_rate))
    assert results and all(0.0 < r.latency_ms < 10_000 for r in results)
    as_json = results[0].to_dict()
    assert set(as_json) >= {
        "start",
        "end",
        "label",
        "probabilities",
        "smoothed",
        "smoothed_label",
        "latency_ms",
    }


@pytest.mark.parametrize("kwargs", [{"smoothing": 0.0}, {"smoothing": 1.5}, {"window": -1.0}, {"hop": -0.1}])
def test_bad_arguments(scorer, kwargs) -> None:
    with pytest.raises(ValueError):
        StreamingScorer(scorer, **{"window": 1.0, "hop": 0.5, **kwargs})


def test_ring_buffer_keeps_newest_samples_in_order() -> None:
    ring = RingBuffer(5)
    ring.write(np.arange(3, dtype=np.float32))
    assert ring.last(3).tolist() == [0, 1, 2]
    ring.write(np.arange(3, 7, dtype=np.float32))
    assert ring.last(5).tolist() == [2, 3, 4, 5, 6]
    ring.write(np.arange(10, 22, dtype=np.float32))  # longer than the ring
    assert ring.last(5).tolist() == [17, 18, 19, 20, 21]
    with pytest.raises(ValueError):
        RingBuffer(5).last(1)


def test_stdin_formats() -> None:
    wave = np.linspace(-0.5, 0.5, 1000, dtype=np.float32)
    f32 = np.concatenate(
        list(stdin_chunks(io.BytesIO(wave.astype("<f4").tobytes()), 16000, "f32", block=0.01))
    )
    assert np.array_equal(f32, wave)
    pcm = (wave * 32767).astype("<i2")
    s16 = np.concatenate(list(stdin_chunks(io.BytesIO(pcm.tobytes() + b"\x01"), 16000, "s16", block=0.01)))
    assert np.allclose(s16, wave, atol=1e-4)
    resampled = np.concatenate(list(stdin_chunks(io.BytesIO(pcm.tobytes()), 16000, "s16", rate=8000)))
    assert abs(resampled.shape[0] - 2000) <= 2  # 8 kHz -> 16 kHz doubles the sample count
    with pytest.raises(LiveInputError, match="--format"):
        list(stdin_chunks(io.BytesIO(b""), 16000, "u8"))


def test_realtime_file_is_paced(tmp_path, wav_writer) -> None:
    path = wav_writer(tmp_path / "half.wav", seconds=0.5, sample_rate=16000)
    began = time.monotonic()
    fast = list(file_chunks(path, 16000))
    assert time.monotonic() - began < 0.4
    began = time.monotonic()
    paced = list(file_chunks(path, 16000, realtime=True))
    assert time.monotonic() - began >= 0.35  # 5 blocks of 0.1 s: the last starts at 0.4 s
    assert sum(map(len, paced)) == sum(map(len, fast)) == 8000


def run_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="ser")
    add_live_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli_file_json(tiny_run, scorer, tmp_path, capsys) -> None:
    ckpt = str(tiny_run.folds[0].checkpoint)
    wave = peaky_wave(2.3, scorer.sample_rate)
    path = tmp_path / "clip.wav"
    sf.write(path, wave, scorer.sample_rate, subtype="FLOAT")
    assert run_cli(["live", ckpt, "--file", str(path), "--json", "--window", "1", "--hop", "0.5"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    reference = score_wave(scorer, wave, window=1.0, hop=0.5)
    assert [x["start"] for x in lines] == [w["start"] for w in reference["windows"]]
    for line, w in zip(lines, reference["windows"]):
        assert line["label"] in tiny_run.metrics["labels"]
        assert line["probabilities"] == pytest.approx(w["probabilities"], abs=2e-4)
        assert line["latency_ms"] > 0


def test_cli_rich_display_on_file(tiny_run, tmp_path, capsys) -> None:
    path = tmp_path / "clip.wav"
    sf.write(path, peaky_wave(1.2, 16000), 16000)
    assert run_cli(["live", str(tiny_run.folds[0].checkpoint), "--file", str(path)]) == 0
    out = capsys.readouterr().out
    assert "smoothed" in out and "latency" in out and "track:" in out


def _has_microphone() -> bool:
    try:
        import sounddevice as sd

        sd.query_devices(kind="input")
        return True
    except Exception:
        return False


@pytest.mark.skipif(
    _has_microphone(), reason="this machine has a microphone; the no-device path is untestable"
)
def test_microphone_unavailable_is_a_clear_error(tiny_run, capsys) -> None:
    with pytest.raises(LiveInputError) as info:
        next(microphone_chunks(16000))
    message = str(info.value)
    assert "--file" in message
    assert any(k in message for k in ("sounddevice", "PortAudio", "no audio input device"))
    assert run_cli(["live", str(tiny_run.folds[0].checkpoint)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ser: error: ") and "--file" in err
