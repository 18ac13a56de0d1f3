"""`ser serve`: a local web UI (upload or record audio, see predictions; browse a sweep's results).

Importing this package needs no web dependencies; `create_app` (in `ser.serve.app`) needs the `ui` extra.
"""

from ser.serve.cli import add_serve_parser, cmd_serve

__all__ = ["add_serve_parser", "cmd_serve"]
