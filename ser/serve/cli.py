"""`ser serve CKPT [--sweep DIR]`: argument parsing and server start-up, kept free of web imports."""

from __future__ import annotations

import argparse
import ipaddress
import sys

UI_MODULES = ("fastapi", "uvicorn", "multipart", "jinja2")


def missing_ui_modules() -> list[str]:
    import importlib.util

    return [name for name in UI_MODULES if importlib.util.find_spec(name) is None]


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def cmd_serve(args: argparse.Namespace) -> int:
    missing = missing_ui_modules()
    if missing:
        print(
            f"ser: error: `ser serve` needs {', '.join(missing)}: pip install 'ser[ui]'",
            file=sys.stderr,
        )
        return 2
    import uvicorn

    from ser.predict import load_scorer
    from ser.serve.app import create_app

    scorer = load_scorer(args.checkpoint)
    app = create_app(
        scorer, sweep_dir=args.sweep, max_upload_mb=args.max_upload_mb, keep_uploads=args.keep_uploads
    )
    if not is_loopback(args.host):
        print(
            f"ser serve: warning: listening on {args.host}, reachable from other machines; "
            "there is no authentication",
            file=sys.stderr,
        )
    print(f"ser serve: http://{args.host}:{args.port}/" + ("  (sweep: /sweep)" if args.sweep else ""))
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


def add_serve_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register `ser serve` on the CLI's sub-parsers."""
    p = sub.add_parser(
        "serve",
        help="web UI: predict uploaded/recorded audio, browse a sweep's results",
        description="Local web UI. Binds to 127.0.0.1 unless --host says otherwise (no authentication).",
    )
    p.add_argument("checkpoint")
    p.add_argument("--sweep", default=None, help="sweep results directory to show at /sweep")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--max-upload-mb", type=float, default=20.0, help="upload size limit in MB (default 20)")
    p.add_argument(
        "--keep-uploads", default=None, help="save a copy of each upload in this folder (default: keep none)"
    )
    p.set_defaults(func=cmd_serve)
    return p
