"""`ser sweep SWEEP.yaml [key=value ...] [--resume] [--address auto] [--no-wandb] [--report]`
(also `python -m ser.sweep ...`), and `ser sweep report RESULTS_DIR`: a finished sweep's conclusions."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ser.cli.args import split_overrides
from ser.cli.errors import INTERRUPTED, run_reporting_errors


def build_parser(prog: str = "ser sweep") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
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
    parser.add_argument(
        "--show-test",
        action="store_true",
        help="add each trial's test UA to the leaderboard, marked as not for choosing (the final test is "
        "`ser holdout`, or sweep.nested.outer_folds=K)",
    )
    return parser


def report_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ser sweep report",
        description="A finished sweep's conclusions: tied group, confirmation, the effect of each searched "
        "key with its interval (effect_<key>.png), fANOVA importance, ASHA rungs within the noise.",
    )
    parser.add_argument(
        "results_dir", help="the sweep's results folder (holding leaderboard.csv, stats.json)"
    )
    parser.add_argument(
        "--no-rebuild", action="store_true", help="print stats.json as it is; do not re-summarise the trials"
    )
    return parser


def report_command(argv: list[str]) -> int:
    overrides, rest = split_overrides(argv)
    args = report_parser().parse_args(rest)

    def run() -> int:
        from ser.sweep.report import report_main

        report_main(args.results_dir, overrides, rebuild=not args.no_rebuild)
        return 0

    return run_reporting_errors(run, prog="ser sweep report")


def main(argv: Sequence[str] | None = None, prog: str = "ser sweep") -> int:
    """Exit 0 when the sweep finished, 130 when interrupted (it says how to resume), 2 for bad input.
    `prog`: how the usage line names the command (`ser sweep`, or `python -m ser.sweep`)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "report":
        return report_command(argv[1:])
    overrides, rest = split_overrides(argv)
    args = build_parser(prog).parse_args(rest)

    def run() -> int:
        from ser.sweep.spec import load_sweep

        plan = load_sweep(args.sweep_file, overrides)  # before the driver's imports: a bad file fails fast
        from ser.sweep.run import report_sweep, run_sweep

        wandb = False if args.no_wandb else None
        if int(plan.sweep.nested.outer_folds) > 0:
            from ser.sweep.nested import run_nested

            outcome = run_nested(plan, resume=args.resume, address=args.address, wandb=wandb)
            return INTERRUPTED if outcome.get("interrupted") else 0
        if args.report:
            report_sweep(plan, show_test=args.show_test)
            return 0
        outcome = run_sweep(
            plan, resume=args.resume, address=args.address, wandb=wandb, show_test=args.show_test
        )
        return INTERRUPTED if outcome.get("interrupted") else 0

    return run_reporting_errors(run, prog=prog)
