"""`python -m ser.sweep SWEEP.yaml [key=value ...]` is `ser sweep ...`."""

import sys

from ser.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["sweep", *sys.argv[1:]]))
