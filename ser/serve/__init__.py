"""`ser serve`'s web UI: upload or record audio, see predictions; browse a sweep's results.

Importing this package needs no web dependencies; `create_app` (in `ser.serve.app`) needs the `ui` extra.
The command itself (argument parsing, start-up) is `ser.cli.serve`.
"""
