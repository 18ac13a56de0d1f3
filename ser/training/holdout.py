"""`ser holdout`: the one final test on speakers that no choice has seen.

With `data.holdout` set, every fold, CV trial and sweep trains and validates on the other speakers only
(`speaker_folds(..., held_out=...)`), so nothing chosen by looking at a number has seen the held-out
speakers. This command then trains the chosen config on the rest (fold 0's training and validation
speakers; the checkpoint chosen on validation as always) and scores the held-out speakers once, writing
which speakers and which config.

"Once" is kept in a ledger next to the feature cache: scoring the same config on the same held-out
speakers again is refused (`--again` overrides it), and scoring a different config on speakers that were
already scored is allowed but said out loud: picking the better of two held-out numbers makes it a
test-selected number again.
"""

from __future__ import annotations

import hashlib
import json
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from ser.config import ConfigError, to_yaml
from ser.data.folds import holdout_fold
from ser.data.paths import cache_root
from ser.data.prepared import PreparedData, prepare_data
from ser.report.tables import summary_table
from ser.training.fit import RunResult, make_run_dir, report_data, write_run
from ser.training.fold import train_fold

LEDGER = "holdout_ledger.json"


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:16]


def holdout_key(cfg: DictConfig, held_out: list[str]) -> str:
    """Which data and held-out speakers a final test is about (not which model)."""
    data = OmegaConf.to_container(cfg.data, resolve=True)
    corpora = {k: data[k] for k in ("corpus", "root", "corpora", "labels", "label_map", "synthetic")}
    return _digest({"corpora": corpora, "held_out": sorted(held_out)})


def config_key(cfg: DictConfig) -> str:
    """The model and training choices (not where outputs go or how progress is shown)."""
    plain = OmegaConf.to_container(cfg, resolve=True)
    plain["trainer"] = {
        k: v for k, v in plain["trainer"].items() if k not in ("output_dir", "run_name", "progress_bar")
    }
    return _digest(plain)


def read_ledger(path: Path) -> dict[str, list[dict[str, Any]]]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def holdout_test(
    cfg: DictConfig, prepared: PreparedData | None = None, again: bool = False, console: Any = None
) -> RunResult:
    """Train on everything but the held-out speakers, test them once; the run directory says who and what."""
    from rich.console import Console

    console = console or Console(stderr=True)
    start = time.perf_counter()
    prepared = prepared or prepare_data(cfg, progress=cfg.trainer.progress_bar)
    if not prepared.held_out:
        raise ConfigError(
            "invalid config key 'data.holdout': no speakers are held out; set data.holdout.speakers=[...] or "
            "data.holdout.fraction=0.25 (the same value the sweeps and CV runs used)"
        )
    ledger_path = cache_root(cfg.data.features.cache_dir) / LEDGER
    ledger = read_ledger(ledger_path)
    key, mine = holdout_key(cfg, prepared.held_out), config_key(cfg)
    earlier = ledger.get(key, [])
    if any(entry["config"] == mine for entry in earlier) and not again:
        raise ConfigError(
            f"this config was already scored on these held-out speakers ({len(earlier)} final test(s) so "
            f"far, see {ledger_path}); a held-out test is meant to be run once: pass --again to run it anyway"
        )
    if earlier:
        console.print(
            f"[yellow]warning:[/] these held-out speakers were scored {len(earlier)} time(s) before by other "
            "configs; choosing among their numbers makes the result a test-selected one again"
        )
    report_data(prepared, console)
    cfg.trainer.run_name = cfg.trainer.run_name or f"{datetime.now():%Y%m%d-%H%M%S}-holdout-{cfg.model.name}"
    run_dir = make_run_dir(cfg)
    (run_dir / "config.yaml").write_text(to_yaml(cfg))
    fold = holdout_fold(prepared.folds)
    result = train_fold(cfg, prepared, 0, run_dir / "final", fold=fold)
    final = {
        "held_out_speakers": list(prepared.held_out),
        "trained_on": list(fold.train),
        "validated_on": list(fold.val),
        "config": "config.yaml",
        "config_key": mine,
        "scored_before": len(earlier),
    }
    metrics = write_run(
        run_dir, cfg, prepared, [result], time.perf_counter() - start, extra={"final_test": final}
    )
    entry = {
        "config": mine,
        "run_dir": str(run_dir.resolve()),
        "time": datetime.now().isoformat(timespec="seconds"),
        "test_uar": (result.test or {}).get("uar"),
    }
    ledger.setdefault(key, []).append(entry)
    ledger_path.write_text(json.dumps(ledger, indent=1))
    console.print(
        summary_table([result], metrics["summary"], f"{cfg.model.name}: final test on held-out speakers")
    )
    console.print(
        f"held-out speakers {', '.join(prepared.held_out)} scored once with {run_dir / 'config.yaml'}"
        + (f" (after {len(earlier)} earlier final test(s) of other configs)" if earlier else "")
    )
    return RunResult(run_dir=run_dir, folds=[result], metrics=metrics)
