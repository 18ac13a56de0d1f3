"""A user error costs no torch, Lightning or Ray import: it is answered in a second, not after 30.

Each case runs the command in a fresh interpreter and reads `sys.modules` there when the command has
returned, so the test checks what was loaded (what makes the error slow), not a timer that depends on
how busy the machine is.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("torch", "lightning", "pytorch_lightning", "ray", "torchaudio", "transformers")

CHILD = f"""
import json, runpy, sys
module, argv = sys.argv[1], sys.argv[2:]
sys.argv = [module, *argv]
try:
    runpy.run_module(module, run_name="__main__", alter_sys=True)
    rc = 0
except SystemExit as exc:
    rc = exc.code
heavy = sorted({{m.split(".")[0] for m in sys.modules}} & set({HEAVY!r}))
print(json.dumps({{"rc": rc, "heavy": heavy}}))
"""


def _run(tmp_path: Path, module: str, *argv: str) -> tuple[dict, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SER_CACHE": str(tmp_path / "cache")}
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, module, *argv],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
    )
    return json.loads(proc.stdout.strip().splitlines()[-1]), proc.stderr


def _sweep_file(tmp_path: Path, **body) -> Path:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"name": "bad", "space": {"optim.lr": {"choice": [0.01]}}, **body}))
    return path


def test_a_config_error_loads_no_torch(tmp_path: Path) -> None:
    out, err = _run(tmp_path, "ser", "fit", "data.batch_sise=32")
    assert out == {"rc": 2, "heavy": []}, err
    assert err.count("\n") == 1 and "data.batch_sise" in err and "batch_size" in err


@pytest.mark.parametrize("module", ["ser", "ser.sweep"])
@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"space": {"model.depht": {"choice": [1, 2]}}}, "model.depht"),
        ({"name": "../../escaped"}, "'name'"),
        ({"scheduler": {"max_t": 0}}, "scheduler.max_t"),
    ],
)
def test_a_sweep_file_error_loads_no_torch_nor_ray(
    tmp_path: Path, module: str, body: dict, named: str
) -> None:
    """`ser sweep bad.yaml` and `python -m ser.sweep bad.yaml` validate the file before importing the
    driver (Ray, Lightning); a name with path separators is refused there too."""
    argv = ["sweep"] if module == "ser" else []
    out, err = _run(tmp_path, module, *argv, str(_sweep_file(tmp_path, **body)))
    assert out == {"rc": 2, "heavy": []}, err
    prog = "ser sweep" if module == "ser" else "python -m ser.sweep"
    assert err.startswith(f"{prog}: error: ") and err.count("\n") == 1 and named in err, err
