"""`ser fit | evaluate | predict | data | sweep`: a thin layer over library functions.

Every command takes dotted `key=value` overrides of the config schema (ser/config.py). Errors that a user
can fix (bad config key, missing corpus, unreadable checkpoint) print one clear line and exit non-zero,
without a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence


class UserError(Exception):
    """An error caused by the input, reported without a traceback."""


def _user_errors() -> tuple[type[BaseException], ...]:
    from ser.config import ConfigError
    from ser.data.types import CorpusError

    errors: list[type[BaseException]] = [UserError, ConfigError, CorpusError, FileNotFoundError]
    try:
        from ser.models.registry import ModelConfigError

        errors.append(ModelConfigError)
    except ImportError:  # pragma: no cover - models not installed
        pass
    try:
        from ser.models.module import TrainingDiverged

        errors.append(TrainingDiverged)
    except ImportError:  # pragma: no cover
        pass
    try:
        from ser.checkpoint import CheckpointError

        errors.append(CheckpointError)
    except ImportError:  # pragma: no cover
        pass
    try:
        from ser.data.audio import AudioError

        errors.append(AudioError)
    except ImportError:  # pragma: no cover
        pass
    return tuple(errors)


def _split_overrides(items: Sequence[str]) -> tuple[list[str], list[str]]:
    """Separate `key=value` overrides from positional arguments."""
    overrides = [i for i in items if "=" in i and not i.startswith("-")]
    rest = [i for i in items if i not in overrides]
    return overrides, rest


# ----------------------------------------------------------------------------------------------- data
def cmd_data_inspect(args: argparse.Namespace) -> int:
    from ser.config import CorpusSpec, load_config
    from ser.data.inspect import inspect_corpus, print_report

    cfg = load_config(overrides=args.overrides)
    spec = CorpusSpec(name=args.corpus, root=args.root, speaker_regex=args.speaker_regex)
    report = inspect_corpus(spec, synthetic=cfg.data.synthetic)
    if args.json:
        print(json.dumps(report, indent=None if args.compact else 2))
    else:
        print_report(report)
    return 0


def cmd_data_synth(args: argparse.Namespace) -> int:
    from ser.config import load_config
    from ser.data.synthetic import write_corpus

    cfg = load_config(overrides=args.overrides)
    paths = write_corpus(args.out, args.style, cfg.data.synthetic)
    print(f"wrote {len(paths)} files in {args.style} layout under {args.out}")
    return 0


# ------------------------------------------------------------------------------------------- training
def cmd_fit(args: argparse.Namespace) -> int:
    from ser.config import load_config
    from ser.train import fit_folds

    cfg = load_config(args.config, args.overrides)
    result = fit_folds(cfg)
    print(f"run directory: {result['run_dir']}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from ser.evaluate import evaluate_checkpoint

    result = evaluate_checkpoint(args.checkpoint, args.config, args.overrides, out_dir=args.out)
    print(f"results: {result['out_dir']}")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from ser.predict import predict_paths, print_predictions

    results = predict_paths(
        args.checkpoint, args.audio, window=args.window, hop=args.hop, speaker_per_file=args.speaker_per_file
    )
    if args.json:
        for item in results:
            print(json.dumps(item))
    else:
        print_predictions(results)
    failed = [r for r in results if "error" in r]
    for r in failed:
        print(f"ser: error: {r['path']}: {r['error']}", file=sys.stderr)
    return 1 if failed else 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from ser.sweep.__main__ import main as sweep_main

    return sweep_main(args.sweep_args)


# -------------------------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ser",
        description="Speech emotion recognition: corpora, training, evaluation and sweeps.",
        epilog="Every command accepts dotted config overrides, e.g. model.depth=4 optim.lr=3e-4.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    fit = sub.add_parser("fit", help="train one fold (data.fold=N) or every fold (data.fold=all)")
    fit.add_argument("--config", action="append", default=[], help="YAML file(s) of differences")
    fit.set_defaults(func=cmd_fit)

    ev = sub.add_parser("evaluate", help="score a checkpoint on a corpus/fold")
    ev.add_argument("checkpoint")
    ev.add_argument("--config", action="append", default=[], help="YAML file(s) applied on top")
    ev.add_argument("--out", default=None, help="output directory (default: next to the checkpoint)")
    ev.set_defaults(func=cmd_evaluate)

    pr = sub.add_parser("predict", help="label audio files or folders with a checkpoint")
    pr.add_argument("checkpoint")
    pr.add_argument("audio", nargs="+", help="audio files or folders")
    pr.add_argument("--json", action="store_true", help="one JSON object per line")
    pr.add_argument("--window", type=float, default=None, help="window seconds (default: training length)")
    pr.add_argument("--hop", type=float, default=None, help="hop seconds (default: half a window)")
    pr.add_argument(
        "--speaker-per-file",
        action="store_true",
        help="speaker-normalised models: each file is its own speaker (default: all files given are one)",
    )
    pr.set_defaults(func=cmd_predict)

    from ser.live import add_live_parser
    from ser.serve import add_serve_parser

    add_live_parser(sub)
    add_serve_parser(sub)

    data = sub.add_parser("data", help="inspect a corpus or write the synthetic one")
    dsub = data.add_subparsers(dest="data_command", required=True)
    ins = dsub.add_parser("inspect", help="counts, durations and skipped files of a corpus")
    ins.add_argument("root", nargs="?", default=None, help="corpus root (not needed for synthetic)")
    ins.add_argument("--corpus", default="synthetic", help="ravdess | crema_d | tess | folder | synthetic")
    ins.add_argument("--speaker-regex", default=None, help="folder layout: regex with a 'speaker' group")
    ins.add_argument("--json", action="store_true", help="print one JSON object")
    ins.add_argument("--compact", action="store_true", help="JSON on one line")
    ins.set_defaults(func=cmd_data_inspect)
    syn = dsub.add_parser("synth", help="write the synthetic corpus as WAV in a real corpus's layout")
    syn.add_argument("out")
    syn.add_argument("--style", default="folder", choices=["ravdess", "crema_d", "tess", "folder"])
    syn.set_defaults(func=cmd_data_synth)

    sw = sub.add_parser("sweep", help="run a sweep (same as python -m ser.sweep)", add_help=False)
    sw.set_defaults(func=cmd_sweep)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "sweep":
        return cmd_sweep(argparse.Namespace(sweep_args=argv[1:]))
    overrides, rest = _split_overrides(argv)
    args = build_parser().parse_args(rest)
    args.overrides = overrides
    errors = _user_errors()
    try:
        return int(args.func(args) or 0)
    except errors as exc:
        print(f"ser: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ser: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
