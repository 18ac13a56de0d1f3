"""One W&B run per trial, written when the trial ends (completed, stopped by the scheduler, or failed).

The driver buffers each trial's per-epoch results and, when the trial ends, writes its whole run in a
subprocess (`python -m ser.sweep.wandb_log SPEC.json`), so a trial stopped by ASHA, even the last one of
a sweep, always leaves a complete run, and the Tune loop never blocks on W&B. Ray's WandbLoggerCallback
logs live instead, but lost the history of the last trial: Tune 2.60 ends the experiment without calling
`on_trial_complete` for a trial the scheduler stops at the very end, so that trial is written from
`on_experiment_end` here.
Offline by default; `wandb sync DIR/wandb/offline-run-*` uploads later.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

_WRITERS: list[subprocess.Popen] = []  # module level: Tune runs a copy of the callback, not our instance
SKIP = {"config", "trial_id", "date", "timestamp", "pid", "hostname", "node_ip", "checkpoint_dir_name"}


def _loggable(result: dict[str, Any]) -> dict[str, float]:
    row = {}
    for key, value in result.items():
        if key in SKIP or isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if math.isfinite(value):
            row[key] = value
    return row


def make_callback(project: str, group: str, mode: str, base_config: dict[str, Any]):
    """A Tune callback buffering results per trial and writing each trial's run when it ends."""
    from ray.tune import Callback

    from ser.sweep.spec import flat_params

    class WandbTrialWriter(Callback):
        def __init__(self) -> None:
            self.history: dict[str, list[dict[str, float]]] = {}

        def on_trial_result(self, iteration, trials, trial, result, **info):
            self.history.setdefault(trial.trial_id, []).append(_loggable(result))

        def _write(self, trial, state: str) -> None:
            trial_dir = Path(trial.path or trial.local_path)  # storage dir: staging is not synced at the end
            history = self.history.pop(trial.trial_id, [])
            spec = {
                "project": project,
                "group": group,
                "mode": mode,
                "id": trial.trial_id,
                "name": f"{group}-{trial.trial_id}",
                "dir": str(trial_dir),
                "config": {**base_config, **flat_params(dict(trial.config or {}))},
                "history": history,
                "state": state,
                "error": str(getattr(trial, "error_file", "") or ""),
            }
            trial_dir.mkdir(parents=True, exist_ok=True)
            spec_file = trial_dir / "wandb_run.json"
            spec_file.write_text(json.dumps(spec, default=str))
            _WRITERS.append(subprocess.Popen([sys.executable, "-m", "ser.sweep.wandb_log", str(spec_file)]))

        def on_trial_complete(self, iteration, trials, trial, **info):
            self._write(trial, "finished")

        def on_trial_error(self, iteration, trials, trial, **info):
            self._write(trial, "failed")

        def on_experiment_end(self, trials, **info):
            # Tune does not always call on_trial_complete for a trial stopped as the experiment ends
            for trial in trials:
                if trial.trial_id in self.history:
                    self._write(trial, "failed" if trial.status == "ERROR" else "finished")

    return WandbTrialWriter()


def wait_for_writers(timeout: float = 300.0) -> list[int]:
    """Wait until every trial's run is written (exit codes; -9 for a writer killed on timeout)."""
    codes = []
    while _WRITERS:
        proc = _WRITERS.pop(0)
        try:
            codes.append(proc.wait(timeout=timeout))
        except subprocess.TimeoutExpired:
            proc.kill()
            codes.append(-9)
    return codes


def write_run(spec: dict[str, Any]) -> Path:
    """Write one W&B run (offline by default) with its per-epoch history; returns the run directory."""
    import wandb

    run = wandb.init(
        project=spec["project"],
        group=spec["group"],
        name=spec["name"],
        id=spec["id"],
        dir=spec["dir"],
        mode=spec["mode"],
        config=spec["config"],
        tags=[spec["state"]],
        reinit="create_new",
        settings=wandb.Settings(silent=True, console="off"),
    )
    for row in spec["history"]:
        step = int(row.get("training_iteration", 0))
        run.log(row, step=step)
    run.summary["trial_state"] = spec["state"]
    run.summary["epochs"] = len(spec["history"])
    run.finish(exit_code=0 if spec["state"] == "finished" else 1)
    return Path(run.dir).parent


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    spec = json.loads(Path(args[0]).read_text())
    write_run(spec)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
