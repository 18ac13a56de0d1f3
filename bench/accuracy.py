"""Real accuracy of each model family's tuned config: every speaker fold, mean +- sd, as a markdown table.

Each family trains with the `data/<corpus>` + `model/<family>` presets (or `--config NAME`) through the same
`ser.train.fit_folds` that `ser fit` uses, so the table is what a user gets from those configs. Model
selection inside a fold looks at validation UA only; the test fold is scored once. This is a script and
not a test: on 2 CPU cores the full table takes about an hour on the 720-file RAVDESS dev set.

    python bench/accuracy.py /work/shared/data/ravdess-dev-16k
    python bench/accuracy.py /work/shared/data/ravdess-dev-16k --families svm,sentan --epochs 10
    python bench/accuracy.py /work/shared/data/ravdess-dev-16k --families ravdess_cnn   # the tuned CNN preset
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from _common import machine_line

from ser.config import PRESET_DIR, load_config

FAMILIES = ("emotion_detector", "emotion_detector2", "sentan", "cnn_lstm", "feature_mlp", "svm")
COLUMNS = ("family", "mean test UA ± sd", "WA ± sd", "macro-F1", "val UA", "params", "minutes")


def family_config(
    family: str, root: str, corpus: str, epochs: int | None, output_dir: str, extra: Sequence[str]
):
    """Data config + the family's tuned config + this run's overrides (all folds, no progress bars). A
    "family" that is itself a preset name with no `model/` prefix (e.g. `ravdess_cnn`, the tuned CNN) is
    used as it is."""
    files = [family] if (PRESET_DIR / f"{family}.yaml").is_file() else [f"data/{corpus}", f"model/{family}"]
    for name in files:
        if not (PRESET_DIR / f"{name}.yaml").is_file():
            raise SystemExit(f"no preset {name}: --corpus and --families must name presets (`ser configs`)")
    overrides = [
        f"data.root={root}",
        "data.fold=all",
        "trainer.progress_bar=false",
        f"trainer.output_dir={output_dir}",
        f"trainer.run_name=accuracy-{family}",
    ]
    if epochs is not None:
        overrides.append(f"trainer.max_epochs={epochs}")
    return load_config(files, [*overrides, *extra])


def pm(stat: Mapping[str, float]) -> str:
    """A mean +- sd cell in percent."""
    return f"{100 * stat['mean']:.1f} ± {100 * stat['sd']:.1f}"


def table_row(family: str, metrics: Mapping[str, Any], minutes: float) -> dict[str, str]:
    s = metrics["summary"]
    return {
        "family": family,
        "mean test UA ± sd": pm(s["test/uar"]),
        "WA ± sd": pm(s["test/wa"]),
        "macro-F1": f"{100 * s['test/f1']['mean']:.1f}",
        "val UA": f"{100 * s['val/uar_best']['mean']:.1f}",
        "params": f"{metrics['parameters']:,}",
        "minutes": f"{minutes:.1f}",
    }


def markdown_table(rows: Sequence[Mapping[str, str]], columns: Sequence[str] = COLUMNS) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(row[c] for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("data_root", help="corpus root, e.g. /work/shared/data/ravdess-dev-16k")
    parser.add_argument("--families", default=",".join(FAMILIES), help="comma-separated model families")
    parser.add_argument(
        "--epochs", type=int, default=None, help="override trainer.max_epochs (default: config)"
    )
    parser.add_argument("--corpus", default="ravdess", help="the data/<corpus> preset (default: ravdess)")
    parser.add_argument("--output-dir", default=None, help="run directories (default: a temporary folder)")
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help="extra override"
    )
    args = parser.parse_args(argv)

    from ser.training.fit import fit_folds

    families = [f.strip() for f in args.families.split(",") if f.strip()]
    output_dir = args.output_dir or tempfile.mkdtemp(prefix="ser-accuracy-")
    configs = {
        f: family_config(f, args.data_root, args.corpus, args.epochs, output_dir, args.overrides)
        for f in families
    }
    rows = []
    for family, cfg in configs.items():
        start = time.perf_counter()
        result = fit_folds(cfg)
        rows.append(table_row(family, result.metrics, (time.perf_counter() - start) / 60))
        print(
            f"{family}: {rows[-1]['mean test UA ± sd']} test UA, run directory {result.run_dir}",
            flush=True,
        )
    folds = len(result.metrics["protocol"]["evaluated_folds"]) if rows else 0
    print()
    print(f"{args.corpus} at {args.data_root}: {folds} speaker-independent test folds, mean ± sd (percent)")
    print(machine_line())
    print()
    print(markdown_table(rows))
    print(f"\nrun directories under {Path(output_dir)}")


if __name__ == "__main__":
    main()
