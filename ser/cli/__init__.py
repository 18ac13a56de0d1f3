"""`ser fit | evaluate | crosscorpus | report | predict | live | serve | data | configs | sweep`: thin
commands over the library.

Every command takes dotted `key=value` overrides of the config schema (ser/config/schema.py); errors a user
can fix print one `ser: error: ...` line and exit 2 (ser/cli/errors.py).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from ser.cli.args import positive_float, split_overrides
from ser.cli.errors import run_reporting_errors

CONFIG_HELP = "a YAML file of differences or a packaged preset by name (`ser configs` lists them); repeatable"


# ----------------------------------------------------------------------------------------------- data
def cmd_data_inspect(args: argparse.Namespace) -> int:
    from ser.config import CorpusSpec, load_config
    from ser.data.inspect import inspect_corpus, print_report

    cfg = load_config(overrides=args.overrides)
    spec = CorpusSpec(name=args.corpus, root=args.root, speaker_regex=args.speaker_regex, subset=args.subset)
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


# ------------------------------------------------------------------------------------------- configs
def cmd_configs(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from ser.config import list_presets

    table = Table(title="packaged configs: ser fit --config NAME", box=None, pad_edge=False)
    table.add_column("name", style="bold", no_wrap=True)
    table.add_column("what it is")
    for name, comment in list_presets():
        table.add_row(name, comment)
    Console().print(table)
    return 0


# ------------------------------------------------------------------------------------------- training
def cmd_fit(args: argparse.Namespace) -> int:
    from ser.config import load_config, to_yaml

    cfg = load_config(args.config, args.overrides)
    if args.print_config:
        print(to_yaml(cfg), end="")
        return 0
    from ser.data.paths import check_output_dir

    check_output_dir(cfg.trainer.output_dir)  # before the torch import: a bad folder fails in a second
    from ser.training.fit import fit_folds

    result = fit_folds(cfg)
    print(f"run directory: {result.run_dir}")
    return 0


def cmd_holdout(args: argparse.Namespace) -> int:
    from ser.config import load_config
    from ser.data.paths import check_output_dir

    cfg = load_config(args.config, args.overrides)
    check_output_dir(cfg.trainer.output_dir)
    from ser.training.holdout import holdout_test

    result = holdout_test(cfg, again=args.again)
    print(f"run directory: {result.run_dir}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from ser.training.evaluate import evaluate_checkpoint

    result = evaluate_checkpoint(args.checkpoint, args.config, args.overrides, out_dir=args.out)
    print(f"results: {result['out_dir']}")
    return 0


def cmd_crosscorpus(args: argparse.Namespace) -> int:
    from ser.training.crosscorpus import cross_corpus, parse_corpus

    entries = [parse_corpus(text) for text in args.corpus]
    result = cross_corpus(entries, args.config, args.overrides, out_dir=args.out)
    out = result["out_dir"]
    print(f"matrix: {out / 'crosscorpus.csv'}, {out / 'crosscorpus.png'}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from ser.report.html import write_report

    path = write_report(args.run, out=args.out, projection=args.projection, worst=args.worst)
    print(f"report: {path}")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from ser.inference.predict import predict_paths, print_predictions

    results = predict_paths(
        args.checkpoint,
        args.audio,
        window=args.window,
        hop=args.hop,
        speaker_pattern=args.speaker_pattern,
        same_speaker=args.same_speaker,
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


def cmd_sweep(argv: Sequence[str]) -> int:
    from ser.cli.sweep import main as sweep_main

    return sweep_main(argv)


# -------------------------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    from ser.config import CHOICES

    parser = argparse.ArgumentParser(
        prog="ser",
        description="Speech emotion recognition: corpora, training, evaluation and sweeps.",
        epilog="Every command accepts dotted config overrides, e.g. model.depth=4 optim.lr=3e-4.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    fit = sub.add_parser(
        "fit",
        help="train one fold (data.fold=N) or every fold (data.fold=all)",
        description="Train the config's speaker folds. The checkpoint is chosen on validation "
        "(trainer.monitor) and the test split scored once.",
        epilog="See the resolved config with --print-config; list packaged recipes with `ser configs` "
        "(e.g. `ser fit --config ravdess_cnn data.root=PATH data.fold=all`).",
    )
    fit.add_argument("--config", action="append", default=[], help=CONFIG_HELP)
    fit.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    fit.set_defaults(func=cmd_fit)

    ho = sub.add_parser(
        "holdout",
        help="the final test: train the chosen config on all but the held-out speakers, score them once",
        description="With data.holdout set (speakers or a fraction), every fold and sweep trial leaves those "
        "speakers out; this trains the chosen config on the rest and tests the held-out speakers once.",
        epilog="e.g. ser holdout --config sweep_results/NAME/best_config.yaml",
    )
    ho.add_argument("--config", action="append", default=[], help=CONFIG_HELP)
    ho.add_argument("--again", action="store_true", help="score a config that was already scored on them")
    ho.set_defaults(func=cmd_holdout)

    ev = sub.add_parser("evaluate", help="score a checkpoint on a corpus/fold")
    ev.add_argument("checkpoint")
    ev.add_argument("--config", action="append", default=[], help=CONFIG_HELP + "; applied on top")
    ev.add_argument("--out", default=None, help="output directory (default: next to the checkpoint)")
    ev.set_defaults(func=cmd_evaluate)

    xc = sub.add_parser(
        "crosscorpus",
        help="train on each corpus, test on every other: a UA matrix (CSV + heatmap)",
        description="Fit every corpus over its speaker folds (the diagonal: within-corpus CV) and score each "
        "fold checkpoint on the whole of every other corpus, on the classes both have (off-diagonal).",
        epilog="e.g. `ser crosscorpus ravdess:/data/ravdess emodb:/data/emodb tess:/data/tess --config "
        "model/sentan data.labels=[neutral,happy,sad,angry]`; overrides apply to every training run.",
    )
    xc.add_argument(
        "corpus",
        nargs="+",
        help="NAME[:ROOT] (its preset data/NAME applies) or a YAML file with one corpus's data config",
    )
    xc.add_argument("--config", action="append", default=[], help=CONFIG_HELP + "; for every training run")
    xc.add_argument("--out", default=None, help="output directory (default: runs/crosscorpus-<time>)")
    xc.set_defaults(func=cmd_crosscorpus)

    rp = sub.add_parser(
        "report",
        help="one self-contained HTML page about a run, evaluation or sweep (its best trial)",
        description="Per-speaker UA, recall per class, reliability diagram with ECE, prediction entropy and "
        "a 2-D projection of the penultimate layer, from the run's saved test predictions.",
    )
    rp.add_argument("run", help="a `ser fit` run directory, a `ser evaluate` output or a sweep directory")
    rp.add_argument("--out", default=None, help="HTML file to write (default: RUN/report.html)")
    rp.add_argument("--projection", default="pca", choices=("pca", "tsne"), help="2-D projection method")
    rp.add_argument("--worst", type=int, default=3, help="how many of the worst speakers to name")
    rp.set_defaults(func=cmd_report)

    pr = sub.add_parser("predict", help="label audio files or folders with a checkpoint")
    pr.add_argument("checkpoint")
    pr.add_argument("audio", nargs="+", help="audio files or folders")
    pr.add_argument("--json", action="store_true", help="one JSON object per line")
    pr.add_argument(
        "--window", type=positive_float, default=None, help="window seconds (default: training length)"
    )
    pr.add_argument("--hop", type=positive_float, default=None, help="hop seconds (default: half a window)")
    speakers = pr.add_mutually_exclusive_group()
    speakers.add_argument(
        "--speaker-pattern",
        default=None,
        metavar="REGEX",
        help="speaker-normalised models: files whose paths give the same speaker share statistics; the "
        "regex's `speaker` group (or first group) names it, e.g. 'Actor_(\\d+)' (default: each file alone)",
    )
    speakers.add_argument(
        "--same-speaker", action="store_true", help="speaker-normalised models: all files are one speaker"
    )
    speakers.add_argument("--speaker-per-file", action="store_true", help=argparse.SUPPRESS)  # the default
    pr.set_defaults(func=cmd_predict)

    from ser.cli.live import add_live_parser
    from ser.cli.serve import add_serve_parser

    add_live_parser(sub)
    add_serve_parser(sub)

    cf = sub.add_parser("configs", help="list the packaged config presets (--config NAME)")
    cf.set_defaults(func=cmd_configs)

    data = sub.add_parser("data", help="inspect a corpus or write the synthetic one")
    dsub = data.add_subparsers(dest="data_command", required=True)
    ins = dsub.add_parser("inspect", help="counts, durations and skipped files of a corpus")
    ins.add_argument(
        "root", nargs="?", default=None, help="corpus root (not needed for synthetic; the file for manifest)"
    )
    ins.add_argument("--corpus", default="synthetic", choices=CHOICES["data.corpus"], help="corpus layout")
    ins.add_argument("--speaker-regex", default=None, help="folder layout: regex with a 'speaker' group")
    ins.add_argument("--subset", default=None, help="a part of the corpus (iemocap: improvised | scripted)")
    ins.add_argument("--json", action="store_true", help="print one JSON object")
    ins.add_argument("--compact", action="store_true", help="JSON on one line")
    ins.set_defaults(func=cmd_data_inspect)
    syn = dsub.add_parser("synth", help="write the synthetic corpus as WAV in a real corpus's layout")
    syn.add_argument("out")
    from ser.data.synthetic import STYLES

    syn.add_argument("--style", default="folder", choices=STYLES)
    syn.set_defaults(func=cmd_data_synth)

    sub.add_parser(
        "sweep", help="run a sweep (same as python -m ser.sweep; see `ser sweep --help`)", add_help=False
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "sweep":
        return cmd_sweep(argv[1:])
    overrides, rest = split_overrides(argv)
    args = build_parser().parse_args(rest)
    args.overrides = overrides
    return run_reporting_errors(lambda: args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
