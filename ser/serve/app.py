"""The FastAPI app behind `ser serve`: a prediction page, a sweep page, and their JSON API.

Everything the browser loads is shipped in this package (templates/, static/): no CDN, no fonts, no
analytics, so the UI works on an offline machine. Uploads are size-limited while the body is read (an ASGI
wrapper counts bytes before any parser buffers them), decoded from a per-request temporary directory that is
removed when the request ends, and kept only when `keep_uploads` names a folder.
"""

from __future__ import annotations

import re
import tempfile
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ser.config.errors import UserError
from ser.data.audio import AudioError, audio_info, load_audio
from ser.inference.scorer import Scorer, score_wave
from ser.serve.spectrogram import display_spectrogram
from ser.serve.sweep import read_sweep, resolve_sweep_file

PACKAGE_DIR = Path(__file__).resolve().parent
FORM_OVERHEAD = 64 * 1024  # multipart boundaries and headers allowed on top of the file size limit
UPLOAD_PATHS = ("/api/predict",)


class ApiError(HTTPException):
    """A client error answered as `{"error": message}` with `status_code`."""


class UploadLimit:
    """ASGI wrapper: 413 as soon as an upload's body passes `max_bytes`, before it is buffered anywhere."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in UPLOAD_PATHS:
            await self.app(scope, receive, send)
            return
        limit = self.max_bytes + FORM_OVERHEAD
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await JSONResponse({"error": self._message()}, status_code=413)(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise ApiError(413, self._message())
            return message

        await self.app(scope, counted, send)

    def _message(self) -> str:
        return too_large_message(self.max_bytes)


def too_large_message(max_bytes: int) -> str:
    return f"upload too large: the limit is {max_bytes / 1e6:g} MB (ser serve --max-upload-mb)"


@dataclass
class ServeState:
    """What the routes share: the scorer (one at a time: torch inference is not re-entrant here)."""

    scorer: Scorer
    max_upload_bytes: int
    sweep_dir: Path | None
    keep_uploads: Path | None
    tmp_dir: Path | None
    lock: threading.Lock
    max_seconds: float = 600.0

    def model_info(self) -> dict[str, Any]:
        s = self.scorer
        return {
            "checkpoint": s.checkpoint.path.name,
            "labels": s.labels,
            "sample_rate": s.sample_rate,
            "window_seconds": s.window_samples / s.sample_rate,
            "feature_kind": s.checkpoint.kind,
        }

    def predict_bytes(self, data: bytes, filename: str) -> dict[str, Any]:
        """Decode and score one upload; AudioError becomes an ApiError with a 4xx status."""
        if not data:
            raise ApiError(400, f"{filename}: empty file (0 bytes)")
        if len(data) > self.max_upload_bytes:
            raise ApiError(413, too_large_message(self.max_upload_bytes))
        if self.keep_uploads is not None:
            self._keep(data, filename)
        suffix = "".join(re.findall(r"[a-z0-9]", Path(filename).suffix.lower()))[:5]
        with tempfile.TemporaryDirectory(prefix="ser-upload-", dir=self.tmp_dir) as scratch:
            path = Path(scratch) / f"upload.{suffix or 'bin'}"
            path.write_bytes(data)
            try:
                info = audio_info(path)
                wave = load_audio(
                    path,
                    self.scorer.sample_rate,
                    normalize=self.scorer.audio_normalize,
                    max_seconds=self.max_seconds,
                )
            except AudioError as exc:
                raise ApiError(_audio_status(exc.reason), f"{filename}: {exc.reason}") from None
        notes = []
        sr = self.scorer.sample_rate
        if info["sample_rate"] != sr:
            notes.append(f"resampled from {info['sample_rate']} Hz to the model's {sr} Hz")
        if info["channels"] > 1:
            notes.append(f"mixed {info['channels']} channels down to mono")
        window = self.scorer.window_samples / sr
        if wave.shape[0] < self.scorer.window_samples:
            notes.append(f"shorter ({wave.shape[0] / sr:.2f} s) than the model's {window:g} s window: padded")
        if self.scorer.speaker_normalized:
            notes.append("speaker-normalised model: standardised with this recording's own statistics")
        with self.lock:
            try:
                result = score_wave(self.scorer, wave)
            except UserError as exc:  # non-finite probabilities: say so instead of answering NaN or 500
                raise ApiError(422, f"{filename}: {exc}") from None
        picture = display_spectrogram(wave, sr)
        return {
            "filename": filename,
            **result,
            "input": info,
            "notes": notes,
            "model": self.model_info(),
            "spectrogram": picture,
        }

    def _keep(self, data: bytes, filename: str) -> None:
        assert self.keep_uploads is not None
        safe = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(filename).name)[-80:] or "upload"
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        (self.keep_uploads / f"{stamp}-{uuid.uuid4().hex[:8]}-{safe}").write_bytes(data)


def _audio_status(reason: str) -> int:
    """415 for bytes that are not audio at all, 400 for nothing sent, 422 for audio we cannot use."""
    if reason.startswith("unreadable"):
        return 415
    if reason.startswith("empty"):
        return 400
    return 422


def create_app(
    scorer: Scorer,
    sweep_dir: str | Path | None = None,
    max_upload_mb: float = 20.0,
    keep_uploads: str | Path | None = None,
    tmp_dir: str | Path | None = None,
    max_seconds: float = 600.0,
    allowed_hosts: list[str] | None = None,
) -> FastAPI:
    """The ASGI app; `tmp_dir` is where per-request scratch folders go (default: the system temp dir).
    `allowed_hosts`: Host header names answered (default: loopback names); others get 400."""
    if max_upload_mb <= 0:
        raise ValueError(f"max_upload_mb must be positive, got {max_upload_mb}")
    if sweep_dir is not None and not Path(sweep_dir).is_dir():
        raise FileNotFoundError(f"{sweep_dir}: sweep directory not found")
    if keep_uploads is not None:
        Path(keep_uploads).mkdir(parents=True, exist_ok=True)
    state = ServeState(
        scorer=scorer,
        max_upload_bytes=int(max_upload_mb * 1e6),
        sweep_dir=Path(sweep_dir) if sweep_dir is not None else None,
        keep_uploads=Path(keep_uploads) if keep_uploads is not None else None,
        tmp_dir=Path(tmp_dir) if tmp_dir is not None else None,
        lock=threading.Lock(),
        max_seconds=float(max_seconds),
    )
    app = FastAPI(title="ser", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.ser = state
    templates = Jinja2Templates(directory=str(PACKAGE_DIR / "templates"))
    app.mount("/static", StaticFiles(directory=str(PACKAGE_DIR / "static")), name="static")

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse({"error": exc.detail}, status_code=exc.status_code)

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "model": state.model_info(), "sweep": state.sweep_dir is not None}

    @app.get("/", response_class=HTMLResponse)
    async def index(request: Request) -> HTMLResponse:
        return templates.TemplateResponse(
            request,
            "index.html",
            {"model": state.model_info(), "max_bytes": state.max_upload_bytes, "has_sweep": bool(sweep_dir)},
        )

    @app.post("/api/predict")
    async def predict(request: Request) -> dict[str, Any]:
        form = await request.form(max_files=1, max_fields=10)
        try:
            upload = form.get("file")
            if not isinstance(upload, UploadFile):
                raise ApiError(400, "send the audio as a multipart/form-data field named 'file'")
            data = await upload.read()
            name = upload.filename or "upload"
        finally:
            await form.close()  # Starlette spools big parts to anonymous temp files: drop them now
        return await run_in_threadpool(state.predict_bytes, data, name)

    def sweep_view() -> Any:
        if state.sweep_dir is None:
            raise ApiError(404, "no sweep directory: start the server with `ser serve CKPT --sweep DIR`")
        return read_sweep(state.sweep_dir)

    @app.get("/api/sweep")
    async def sweep_api() -> dict[str, Any]:
        return sweep_view().to_json()

    @app.get("/sweep", response_class=HTMLResponse)
    async def sweep_page(request: Request) -> HTMLResponse:
        if state.sweep_dir is None:
            return HTMLResponse(
                "<!doctype html><title>ser: no sweep</title><p>No sweep directory: start the server with "
                "<code>ser serve CKPT --sweep DIR</code>. <a href='/'>Back</a></p>",
                status_code=404,
            )
        view = sweep_view()
        return templates.TemplateResponse(
            request, "sweep.html", {"view": view, "model": state.model_info(), "has_sweep": True}
        )

    @app.get("/sweep/files/{relative:path}")
    async def sweep_file(relative: str) -> FileResponse:
        if state.sweep_dir is None:
            raise ApiError(404, "no sweep directory")
        target = resolve_sweep_file(state.sweep_dir, relative)
        if target is None:
            shown = relative if len(relative) <= 200 else f"{relative[:200]}..."
            raise ApiError(404, f"{shown}: no such file in the sweep directory")
        return FileResponse(target)

    app.add_middleware(UploadLimit, max_bytes=state.max_upload_bytes)
    app.add_middleware(
        TrustedHostMiddleware, allowed_hosts=allowed_hosts or ["127.0.0.1", "localhost", "::1", "[::1]"]
    )
    return app
