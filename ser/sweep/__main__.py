"""`python -m ser.sweep SWEEP.yaml [key=value ...] [--resume] [--address auto] [--no-wandb]`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m ser.sweep",
        description="Run a hyperparameter sweep (Ray Tune, ASHA by default) from a sweep YAML file.",
        epilog=(
            "Overrides: key=value sets the trials' base config (e.g. data.root=PATH); "
            "sweep.key=value sets the sweep itself (e.g. sweep.num_samples=8 sweep.scheduler.max_t=20)."
        ),
    )
    parser.add_argument("sweep_file")
    parser.add_argument(
        "--resume", action="store_true", help="continue an interrupted sweep of the same name"
    )
    parser.add_argument("--address", default=None, help="Ray cluster address (e.g. auto); default: local")
    parser.add_argument("--no-wandb", action="store_true", help="do not log to W&B")
    parser.add_argument(
        "--report", action="store_true", help="only rebuild leaderboard and plots from the results on disk"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from ser.cli import _user_errors

    argv = list(sys.argv[1:] if argv is None else argv)
    overrides = [a for a in argv if "=" in a and not a.startswith("-")]
    args = build_parser().parse_args([a for a in argv if a not in overrides])
    try:
        from ser.sweep.run import report_sweep, run_sweep
        from ser.sweep.spec import load_sweep

        plan = load_sweep(args.sweep_file, overrides)
        if args.report:
            report_sweep(plan)
        else:
            run_sweep(plan, resume=args.resume, address=args.address, wandb=False if args.no_wandb else None)
    except _user_errors() as exc:
        print(f"ser sweep: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ser sweep: interrupted; continue with --resume", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
