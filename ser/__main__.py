"""`python -m ser` is the `ser` command."""

from ser.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
