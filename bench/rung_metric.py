"""Which rung metric keeps the eventual winners? Measured on a sweep run WITHOUT early stopping (FIFO), so
every trial's whole validation curve exists:

    python bench/rung_metric.py SWEEP_RESULTS_DIR [--rungs 3,5] [--alpha 0.5]

For each rung epoch r and each rung metric (last | best | ema, ser.sweep.schedulers.rung_score), the
Spearman rank correlation between the score a trial shows at r and its final score (the best validation
UA over all its epochs: what selection keeps), across the sweep's trials (their fold-mean curves, what
ASHA compares) and across every fold curve of every trial (more curves, the same question per fold).
Validation only: no test number is read. Trials that were interrupted count up to the shortest curve.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from scipy.stats import spearmanr

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from ser.sweep.schedulers import RUNG_METRICS, rung_score  # noqa: E402


def curves(root: Path, metric: str) -> tuple[list[list[float]], list[list[float]], list[list[list[float]]]]:
    """(fold-mean curve per trial, every fold's curve, the fold curves grouped by trial) from result.json."""
    means, folds, grouped = [], [], []
    for result in sorted(root.glob("*/result.json")):
        rows = [json.loads(line) for line in result.read_text().splitlines() if line.strip()]
        rows = sorted(
            {int(r["training_iteration"]): r for r in rows}.values(), key=lambda r: r["training_iteration"]
        )
        if not rows:
            continue
        means.append([float(r[metric]) for r in rows])
        keys = sorted(k for k in rows[0] if k.startswith("fold") and k.endswith(f"/{metric}"))
        mine = [[float(r[k]) for r in rows if k in r] for k in keys]
        folds += mine
        grouped.append(mine)
    return means, folds, grouped


def agreement(curves_: list[list[float]], rung: int, how: str, alpha: float, length: int) -> float | None:
    """Spearman rho between the rung score at `rung` and the best value over `length` epochs."""
    usable = [c[:length] for c in curves_ if len(c) >= length]
    if len(usable) < 3:
        return None
    at_rung = [rung_score(c[:rung], how, "max", alpha) for c in usable]
    final = [max(c) for c in usable]
    rho = spearmanr(at_rung, final).statistic
    return None if rho != rho else float(rho)  # constant scores (a trial at chance): undefined


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results_dir")
    parser.add_argument("--metric", default="val/uar")
    parser.add_argument(
        "--rungs", default="", help="comma-separated rung epochs (default: 1/3 and 2/3 of the curve)"
    )
    parser.add_argument("--alpha", type=float, default=0.5, help="ema: weight of the newest epoch")
    parser.add_argument("--full", action="store_true", help="only the trials with the longest (whole) curve")
    args = parser.parse_args()
    means, folds, grouped = curves(Path(args.results_dir), args.metric)
    if args.full and means:
        longest = max(len(c) for c in means)
        keep = [i for i, c in enumerate(means) if len(c) == longest]
        means, grouped = [means[i] for i in keep], [grouped[i] for i in keep]
        folds = [c for g in grouped for c in g]
    length = min((len(c) for c in means), default=0)
    if length < 2:
        print("need at least 2 epochs per trial", file=sys.stderr)
        return 2
    rungs = [int(r) for r in args.rungs.split(",") if r] or sorted(
        {max(1, length // 3), max(1, 2 * length // 3)}
    )
    print(f"{len(means)} trials, {len(folds)} fold curves, {length} epochs each (final = best of {length})")
    print(f"{'rung':>5} {'metric':>6} {'rho trials':>11} {'rho folds':>10} {'rho within trials':>18}")
    out = []
    for rung in rungs:
        for how in RUNG_METRICS:
            trials = agreement(means, rung, how, args.alpha, length)
            per_fold = agreement(folds, rung, how, args.alpha, length)
            inside = [agreement(g, rung, how, args.alpha, length) for g in grouped]
            inside = [v for v in inside if v is not None]
            within = sum(inside) / len(inside) if inside else None  # mean over trials of the folds' rho
            out.append(
                {
                    "rung": rung,
                    "metric": how,
                    "rho_trials": trials,
                    "rho_folds": per_fold,
                    "rho_within": within,
                }
            )
            fmt = lambda v: "n/a" if v is None else f"{v:.2f}"  # noqa: E731
            print(f"{rung:>5} {how:>6} {fmt(trials):>11} {fmt(per_fold):>10} {fmt(within):>18}")
    print(json.dumps({"trials": len(means), "fold_curves": len(folds), "epochs": length, "rows": out}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
