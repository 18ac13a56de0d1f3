"""`python -m ser.sweep SWEEP.yaml [key=value ...]` is `ser sweep ...`."""

import sys

from ser.cli.sweep import main

if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:], prog="python -m ser.sweep"))
