"""`ser serve CKPT [--sweep DIR]`: argument parsing and server start-up, kept free of web imports."""

from __future__ import annotations

import argparse
import ipaddress
import sys

from ser.extras import install_hint

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


LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1", "[::1]")


def allowed_hosts(host: str, extra: list[str]) -> list[str]:
    """Host headers the server answers: loopback names, plus the bound host when it is not loopback and
    any `--allow-host`; a wildcard bind (0.0.0.0, ::) answers every name. A page on another site cannot
    then reach a loopback server through DNS rebinding (its requests carry that site's Host)."""
    if host in ("0.0.0.0", "::"):
        return ["*"]
    return list(dict.fromkeys([*LOOPBACK_NAMES, host, *extra]))


def bind(host: str, port: int):
    """A listening socket, bound before anything is printed: a busy port is one error line, not a URL
    followed by a traceback."""
    import socket

    from ser.cli.errors import UserError

    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except (OSError, OverflowError) as exc:  # OverflowError: a port outside 0-65535
        sock.close()
        raise UserError(f"cannot listen on {host}:{port} ({exc.strerror or exc})") from None
    sock.listen(128)
    return sock


def cmd_serve(args: argparse.Namespace) -> int:
    missing = missing_ui_modules()
    if missing:
        print(
            f"ser: error: `ser serve` needs {', '.join(missing)}: {install_hint('ui')}",
            file=sys.stderr,
        )
        return 2
    import uvicorn

    from ser.inference.scorer import load_scorer
    from ser.serve.app import create_app

    scorer = load_scorer(args.checkpoint)
    app = create_app(
        scorer,
        sweep_dir=args.sweep,
        max_upload_mb=args.max_upload_mb,
        keep_uploads=args.keep_uploads,
        max_seconds=args.max_seconds,
        allowed_hosts=allowed_hosts(args.host, args.allow_host),
    )
    sock = bind(args.host, args.port)
    port = sock.getsockname()[1]
    if not is_loopback(args.host):
        print(
            f"ser serve: warning: listening on {args.host}, reachable from other machines; "
            "there is no authentication",
            file=sys.stderr,
        )
    print(f"ser serve: http://{args.host}:{port}/" + ("  (sweep: /sweep)" if args.sweep else ""), flush=True)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    server.run(sockets=[sock])
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
    from ser.cli.args import int_in, positive_float

    p.add_argument(
        "--port", type=int_in(0, 65535, "port"), default=8000, help="port (default 8000; 0: any free)"
    )

    p.add_argument(
        "--max-upload-mb", type=positive_float, default=20.0, help="upload size limit in MB (default 20)"
    )
    p.add_argument(
        "--keep-uploads", default=None, help="save a copy of each upload in this folder (default: keep none)"
    )
    p.add_argument(
        "--max-seconds",
        type=positive_float,
        default=600.0,
        help="longest audio accepted, seconds (default 600)",
    )
    p.add_argument(
        "--allow-host",
        action="append",
        default=[],
        help="another Host header name to answer (default: loopback names and --host)",
    )
    p.set_defaults(func=cmd_serve)
    return p
