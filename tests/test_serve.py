"""`ser serve`: prediction API on good and bad uploads, size limit, sweep API/page, path traversal."""

from __future__ import annotations

import base64
import json
import re
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("fastapi", reason="the web UI needs the `ui` extra (fastapi)")
pytest.importorskip("multipart", reason="the web UI needs the `ui` extra (python-multipart)")
with warnings.catch_warnings():  # Starlette 1.x warns that its TestClient will move from httpx to httpx2
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient  # noqa: E402

from ser.inference.scorer import load_scorer, window_starts  # noqa: E402
from ser.serve.app import create_app  # noqa: E402
from ser.serve.sweep import metric_column, read_sweep, resolve_sweep_file  # noqa: E402
from tests.helpers.sweep_trials import write_fake_trials  # noqa: E402

LEADERBOARD = """\
trial_id,status,val/uar,val/uar_best,epochs,stopped_early,wall_seconds,error,model.depth,optim.lr
t0001,TERMINATED,0.61,0.64,8,no,41.2,,4,0.001
t0002,TERMINATED,0.55,0.71,8,no,39.9,,6,0.0003
t0003,TERMINATED,0.30,0.33,2,yes,10.5,,2,0.01
t0004,ERROR,,,0,no,3.1,RuntimeError: CUDA out of memory <script>alert(1)</script>,8,nan
"""


def png_bytes(width: int = 40, height: int = 24, rgb: tuple[int, int, int] = (48, 86, 211)) -> bytes:
    """A valid solid-colour PNG, written by hand so the tests need no image library."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def make_sweep_dir(root: Path, plots: bool = True) -> Path:
    """A sweep results folder as `python -m ser.sweep` writes it, without asha_rungs.png (on purpose)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "leaderboard.csv").write_text(LEADERBOARD)
    (root / "best_config.yaml").write_text("model:\n  depth: 6\noptim:\n  lr: 0.0003\n")
    meta = {
        "name": "cnn_depth",
        "metric": "val/uar",
        "mode": "max",
        "searched_keys": ["model.depth", "optim.lr"],
        "started": "2025-01-01T10:00:00",
        "finished": "2025-01-01T10:05:00",
    }
    (root / "sweep.json").write_text(json.dumps(meta))
    if plots:
        for name in ["parallel_coordinates.png", "metric_vs_model.depth.png", "metric_vs_optim.lr.png"]:
            (root / name).write_bytes(png_bytes())
        (root / "best").mkdir(exist_ok=True)
        (root / "best" / "confusion_matrix.png").write_bytes(png_bytes(rgb=(46, 157, 91)))
        (root / "best" / "curves.png").write_bytes(png_bytes(rgb=(224, 96, 43)))
        write_fake_trials(root)
    return root


@pytest.fixture(scope="module")
def scorer(tiny_run):
    return load_scorer(tiny_run.folds[0].checkpoint)


@pytest.fixture
def sweep_dir(tmp_path: Path) -> Path:
    (tmp_path / "secret.txt").write_text("outside the sweep")
    return make_sweep_dir(tmp_path / "sweep")


@pytest.fixture
def scratch(tmp_path: Path) -> Path:
    path = tmp_path / "scratch"
    path.mkdir()
    return path


@pytest.fixture
def client(scorer, sweep_dir: Path, scratch: Path) -> TestClient:
    return local_client(create_app(scorer, sweep_dir=sweep_dir, max_upload_mb=0.5, tmp_dir=scratch))


def wav(tmp_path: Path, name: str = "a.wav", **kwargs) -> bytes:
    from tests.conftest import write_wav

    return write_wav(tmp_path / name, **kwargs).read_bytes()


def local_client(app) -> TestClient:
    """A client that talks to the app as a browser on this machine does (Host: 127.0.0.1)."""
    return TestClient(app, base_url="http://127.0.0.1")


def post(client: TestClient, data: bytes, name: str = "clip.wav"):
    return client.post("/api/predict", files={"file": (name, data, "audio/wav")})


def external_urls(text: str) -> set[str]:
    return set(re.findall(r"(?:https?:)?//[\w.-]+\.[a-z]{2,}[^\s\"'<>)]*", text)) - {
        "http://www.w3.org/2000/svg"
    }


def assert_still_serving(client: TestClient) -> None:
    assert client.get("/healthz").json()["status"] == "ok"


# ------------------------------------------------------------------------------------------ predict
def test_healthz_and_page(client, scorer) -> None:
    health = client.get("/healthz").json()
    assert health["model"]["labels"] == scorer.labels
    page = client.get("/")
    assert page.status_code == 200
    assert 'id="file"' in page.text and "/static/app.js" in page.text
    assert external_urls(page.text) == set()  # nothing is fetched from elsewhere
    js = client.get("/static/app.js")
    assert js.status_code == 200 and "/api/predict" in js.text and external_urls(js.text) == set()
    assert client.get("/static/style.css").status_code == 200


def test_predict_wav(client, scorer, tmp_path, scratch) -> None:
    seconds = 2.5
    response = post(client, wav(tmp_path, seconds=seconds, sample_rate=16000))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["label"] in scorer.labels
    assert sum(body["probabilities"].values()) == pytest.approx(1.0, abs=1e-3)
    expected = window_starts(int(seconds * 16000), scorer.window_samples, scorer.window_samples // 2)
    assert [w["start"] for w in body["windows"]] == [round(s / 16000, 3) for s in expected]
    assert all(w["label"] in scorer.labels for w in body["windows"])
    assert body["notes"] == []
    assert list(scratch.iterdir()) == []  # the per-request copy is gone
    picture = body["spectrogram"]  # the page's log-mel picture: 64 bands x one column per 10 ms
    assert (picture["n_mels"], picture["frames"]) == (64, 1 + int(seconds * 16000) // 160)
    assert len(base64.b64decode(picture["data"])) == 64 * picture["frames"]


def test_display_spectrogram_puts_a_tone_in_its_band_and_pools_long_clips() -> None:
    import librosa

    from ser.serve.spectrogram import display_spectrogram

    sr = 16000
    tone = 0.5 * np.sin(2 * np.pi * 1000.0 * np.arange(sr) / sr).astype(np.float32)
    picture = display_spectrogram(tone, sr)
    data = np.frombuffer(base64.b64decode(picture["data"]), dtype=np.uint8).reshape(64, picture["frames"])
    centres = librosa.mel_frequencies(n_mels=66, fmin=0, fmax=sr / 2)[1:-1]  # band k peaks at centres[k]
    assert abs(centres[int(data.mean(axis=1).argmax())] - 1000.0) < 120  # row 0 is the lowest band
    assert data.max() == 255 and picture["seconds_per_frame"] == pytest.approx(0.01)
    long = display_spectrogram(np.tile(tone, 30), sr, max_frames=500)  # 30 s = 3001 frames -> pooled by 7
    assert long["frames"] <= 500 and long["seconds_per_frame"] == pytest.approx(0.07)


def test_wrong_rate_and_stereo_are_converted_and_said(client, tmp_path) -> None:
    body = post(client, wav(tmp_path, seconds=1.5, sample_rate=44100, channels=2, kind="tone")).json()
    notes = " | ".join(body["notes"])
    assert "resampled from 44100 Hz" in notes and "2 channels" in notes
    assert body["input"]["sample_rate"] == 44100


def test_short_clip_is_padded_and_said(client, tmp_path) -> None:
    body = post(client, wav(tmp_path, seconds=0.3)).json()
    assert len(body["windows"]) == 1 and any("padded" in n for n in body["notes"])


@pytest.mark.parametrize(
    "data, status, words",
    [
        (b"", 400, "empty file"),
        (b"this is a text file, not audio\n" * 20, 415, "not a supported audio file"),
        (b"RIFF\x24\x00\x00\x00WAVEfmt ", 415, "not a supported audio file"),
    ],
    ids=["empty", "text", "broken-header"],
)
def test_bad_bytes(client, scratch, data, status, words) -> None:
    response = post(client, data, "bad.wav")
    assert response.status_code == status
    assert words in response.json()["error"] and "bad.wav" in response.json()["error"]
    assert list(scratch.iterdir()) == []
    assert_still_serving(client)


def test_silence_and_truncation(client, tmp_path) -> None:
    response = post(client, wav(tmp_path, "s.wav", kind="silence", seconds=1.0))
    assert response.status_code == 422 and "silent" in response.json()["error"]
    data = wav(tmp_path, "t.wav", seconds=1.0)
    response = post(client, data[: len(data) // 2])
    assert response.status_code == 422 and "truncated" in response.json()["error"]
    assert_still_serving(client)


def test_missing_file_field(client) -> None:
    response = client.post("/api/predict", data={"not_file": "x"})
    assert response.status_code == 400 and "'file'" in response.json()["error"]
    response = client.post("/api/predict", content=b"raw bytes", headers={"content-type": "audio/wav"})
    assert response.status_code == 400


def test_size_limit(client, scratch, tmp_path) -> None:
    big = wav(tmp_path, seconds=20.0)  # 640 kB of 16-bit PCM > the 0.5 MB limit
    response = post(client, big)
    assert response.status_code == 413 and "0.5 MB" in response.json()["error"]

    def body_without_length():  # chunked: the limit is enforced while reading, not from the header
        boundary = b"--xyz\r\n"
        yield boundary + b'Content-Disposition: form-data; name="file"; filename="big.wav"\r\n\r\n'
        for i in range(0, len(big), 65536):
            yield big[i : i + 65536]
        yield b"\r\n--xyz--\r\n"

    response = client.post(
        "/api/predict",
        content=body_without_length(),
        headers={"content-type": "multipart/form-data; boundary=xyz"},
    )
    assert response.status_code == 413 and "limit" in response.json()["error"]
    assert list(scratch.iterdir()) == []
    assert post(client, wav(tmp_path, seconds=1.0)).status_code == 200  # and it keeps serving


def test_upload_limit_stops_reading_early() -> None:
    """The limit cuts the body off while it streams in: later chunks are never read."""
    import asyncio

    from ser.serve.app import FORM_OVERHEAD, ApiError, UploadLimit

    reads: list[int] = []

    async def reader_app(scope, receive, send) -> None:
        while True:
            message = await receive()
            if not message.get("more_body"):
                return

    async def receive() -> dict:
        reads.append(10_000)
        return {"type": "http.request", "body": b"x" * 10_000, "more_body": len(reads) < 1000}

    sent: list[dict] = []

    async def send(message: dict) -> None:
        sent.append(message)

    guarded = UploadLimit(reader_app, max_bytes=50_000)
    scope = {"type": "http", "path": "/api/predict", "headers": []}
    with pytest.raises(ApiError) as info:
        asyncio.run(guarded(scope, receive, send))
    assert info.value.status_code == 413
    assert sum(reads) <= 50_000 + FORM_OVERHEAD + 10_000  # stopped at the limit, not after 10 MB
    declared = {**scope, "headers": [(b"content-length", b"10000000")]}
    reads.clear()
    asyncio.run(guarded(declared, receive, send))  # a declared length over the limit: refused unread
    assert reads == [] and sent[0]["status"] == 413


def test_keep_uploads(scorer, tmp_path) -> None:
    keep = tmp_path / "kept"
    client = local_client(create_app(scorer, keep_uploads=keep))
    assert post(client, wav(tmp_path, seconds=1.0), "../../evil name.wav").status_code == 200
    kept = list(keep.iterdir())
    assert len(kept) == 1 and kept[0].name.endswith("evil_name.wav")
    assert sf.info(str(kept[0])).duration == pytest.approx(1.0)


# -------------------------------------------------------------------------------------------- sweep
def test_sweep_api(client) -> None:
    body = client.get("/api/sweep").json()
    assert body["name"] == "cnn_depth" and body["metric"] == "val/uar"
    assert [r["trial_id"] for r in body["rows"]] == ["t0001", "t0002", "t0003", "t0004"]
    assert body["columns"][:4] == ["trial_id", "status", "val/uar", "val/uar_best"]
    assert body["metric_column"] == "val/uar_best"
    assert body["rows"][body["best_index"]]["trial_id"] == "t0002"
    assert body["rows"][1]["model.depth"] == 6 and body["rows"][1]["optim.lr"] == pytest.approx(3e-4)
    failed = body["rows"][3]
    assert failed["val/uar_best"] is None and failed["optim.lr"] is None  # empty and NaN -> null
    assert "asha_rungs.png" in body["missing"]
    assert {p["path"] for p in body["plots"]} == {
        "parallel_coordinates.png",
        "metric_vs_model.depth.png",
        "metric_vs_optim.lr.png",
        "best/confusion_matrix.png",
        "best/curves.png",
    }


def test_sweep_page(client) -> None:
    page = client.get("/sweep")
    assert page.status_code == 200
    html = page.text
    assert html.count("<tr class=") == 4 and 'id="leaderboard"' in html
    assert 'src="/sweep/files/best/confusion_matrix.png"' in html and "asha_rungs.png" in html
    assert "<script>alert(1)</script>" not in html  # CSV text is escaped
    assert "depth: 6" in html  # best config shown
    image = client.get("/sweep/files/best/curves.png")
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    assert image.content.startswith(b"\x89PNG")


def test_sweep_page_links_trials_and_shows_the_best_configs_changes_first(client) -> None:
    body = client.get("/api/sweep").json()
    assert body["trials"] == {t: f"/sweep/files/trials/{t}.json" for t in ("t0001", "t0002", "t0003")}
    trial = client.get(body["trials"]["t0002"]).json()
    assert [h["epoch"] for h in trial["history"]] == list(range(1, 9)) and trial["best_epoch"] == 8
    assert "val/uar_sd" not in trial["history"][0] and trial["searched"] == {
        "model.depth": 6,
        "optim.lr": 0.0003,
    }
    assert {"key": "model.pool", "base": "mean", "value": "attention"} in trial["changes"]
    html = client.get("/sweep").text
    assert html.count("data-trial-url=") == 3  # the failed trial without a file is not clickable
    searched = html[
        html.index('id="best-searched"') : html.index("</table>", html.index('id="best-searched"'))
    ]
    assert "model.depth" in searched and ">6<" in searched and "0.0003" in searched
    changes = html[html.index('id="best-changes"') : html.index("</table>", html.index('id="best-changes"'))]
    assert "model.pool" in changes and "attention" in changes and "model.depth" not in changes
    assert html.index('id="best-searched"') < html.index('id="best-yaml"')  # full YAML after, folded
    assert '<details id="best-yaml" >' in html
    assert "trainer.max_epochs" in html[html.index('id="best-fixed"') :]


def test_sweep_of_a_failed_run_shows_what_exists(scorer, tmp_path) -> None:
    root = tmp_path / "failed"
    root.mkdir()
    (root / "sweep.json").write_text('{"name": "broken", "metric": "val/uar", "mode": "max"}')
    client = local_client(create_app(scorer, sweep_dir=root))
    body = client.get("/api/sweep").json()
    assert body["rows"] == [] and "leaderboard.csv" in body["missing"] and body["best_index"] is None
    page = client.get("/sweep")
    assert page.status_code == 200 and "leaderboard.csv is missing" in page.text


def test_no_sweep_dir(scorer) -> None:
    client = local_client(create_app(scorer))
    assert client.get("/api/sweep").status_code == 404
    assert "--sweep" in client.get("/api/sweep").json()["error"]
    assert client.get("/sweep").status_code == 404
    assert 'href="/sweep"' not in client.get("/").text
    with pytest.raises(FileNotFoundError):
        create_app(scorer, sweep_dir="/nonexistent/sweep")


@pytest.mark.parametrize(
    "url",
    [
        "/sweep/files/..%2fsecret.txt",
        "/sweep/files/%2e%2e/secret.txt",
        "/sweep/files/best/..%2f..%2fsecret.txt",
        "/sweep/files/%2fetc%2fpasswd",
        "/sweep/files//etc/passwd",
        "/sweep/files/link_out.txt",
        "/sweep/files/best/checkpoint.ckpt",
        "/sweep/files/nope.png",
    ],
)
def test_path_traversal_rejected(client, sweep_dir, url) -> None:
    (sweep_dir / "link_out.txt").symlink_to(sweep_dir.parent / "secret.txt")
    (sweep_dir / "best" / "checkpoint.ckpt").write_bytes(b"weights")
    response = client.get(url)
    assert response.status_code == 404
    assert "outside the sweep" not in response.text and "root:" not in response.text


def test_resolve_sweep_file(sweep_dir) -> None:
    assert resolve_sweep_file(sweep_dir, "best/curves.png") == (sweep_dir / "best" / "curves.png").resolve()
    assert resolve_sweep_file(sweep_dir, "leaderboard.csv") is not None
    for bad in ["../secret.txt", "/etc/passwd", "best/../../secret.txt", "a\x00b.png", "best"]:
        assert resolve_sweep_file(sweep_dir, bad) is None, bad
    assert read_sweep(sweep_dir).best_index == 1


@pytest.mark.parametrize(
    "columns, expected",
    [
        (["trial_id", "val/uar", "val/uar_best"], "val/uar_best"),
        (["rank", "trial_id", "val/uar (last)", "val/uar (best)", "test/uar"], "val/uar (best)"),
        (["trial_id", "val/uar"], "val/uar"),
        (["trial_id", "status"], None),
    ],
)
def test_metric_column_spellings(columns, expected) -> None:
    assert metric_column(columns, "val/uar") == expected


def test_trial_ids_stay_strings(tmp_path: Path) -> None:
    root = tmp_path / "ids"
    root.mkdir()
    (root / "leaderboard.csv").write_text(
        "rank,trial_id,val/uar (best),depth\n1,48706_00001,0.5,3\n2,00012,0.4,2\n"
    )
    rows = read_sweep(root).rows
    assert [r["trial_id"] for r in rows] == ["48706_00001", "00012"]
    assert rows[0]["depth"] == 3 and rows[0]["val/uar (best)"] == 0.5


def test_only_loopback_host_names_are_answered(scorer) -> None:
    app = create_app(scorer)
    assert local_client(app).get("/healthz").status_code == 200
    assert TestClient(app, base_url="http://localhost").get("/healthz").status_code == 200
    rebound = TestClient(app, base_url="http://attacker.example")  # DNS rebinding: a foreign Host header
    assert rebound.get("/healthz").status_code == 400
    from ser.cli.serve import allowed_hosts

    assert "box.lan" in allowed_hosts("box.lan", []) and allowed_hosts("0.0.0.0", []) == ["*"]


def test_absurd_sample_rates_and_over_long_audio_are_refused_from_the_header(client, tmp_path) -> None:
    import io
    import time

    buffer = io.BytesIO()
    sf.write(
        buffer,
        (0.1 * np.random.default_rng(0).standard_normal(200_000)).astype(np.float32),
        100,
        format="WAV",
    )
    started = time.monotonic()
    response = post(client, buffer.getvalue(), "slow.wav")
    assert response.status_code == 422 and "implausible sample rate 100 Hz" in response.json()["error"]
    assert time.monotonic() - started < 10  # refused before decoding or resampling anything
    long = io.BytesIO()
    sf.write(long, np.zeros(8000 * 700, dtype=np.int16), 8000, format="WAV", subtype="PCM_16")
    too_long = local_client(create_app(client.app.state.ser.scorer, max_upload_mb=20)).post(
        "/api/predict", files={"file": ("long.wav", long.getvalue(), "audio/wav")}
    )
    assert too_long.status_code == 422 and "too long" in too_long.json()["error"]
    assert_still_serving(client)


def test_serve_binds_before_printing_and_a_busy_port_is_one_line(capsys) -> None:
    import socket

    from ser.cli.errors import UserError
    from ser.cli.serve import bind

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    port = taken.getsockname()[1]
    with pytest.raises(UserError, match=f"cannot listen on 127.0.0.1:{port}"):
        bind("127.0.0.1", port)
    taken.close()
    sock = bind("127.0.0.1", 0)
    assert sock.getsockname()[1] > 0
    sock.close()
