"""What a newcomer reads: `ser fit`'s log when its output is a file, tables at 80 columns or piped,
install hints, `ser configs`, `ser sweep --help`, and the report and evaluation headers."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from ser.cli import main

ROOT = Path(__file__).resolve().parent.parent


# ------------------------------------------------------------------------------------------ ser fit
@pytest.mark.slow
def test_fit_to_a_file_prints_the_folds_then_a_line_per_epoch_and_fold(
    tiny_overrides, tiny_env, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    overrides = [
        *[o for o in tiny_overrides if not o.startswith(("data.folds=", "data.synthetic.speakers="))],
        "data.synthetic.speakers=6",
        "data.synthetic.per_label=2",
        "data.folds=3",
        "data.fold=all",
        "trainer.progress_bar=true",  # asked for, but the output is not a terminal: lines instead
        f"trainer.output_dir={tmp_path}",
    ]
    assert main(["fit", *overrides]) == 0
    err = capsys.readouterr().err
    lines = err.splitlines()
    # before training: each fold's splits with their speakers and sizes (6 speakers x 8 clips)
    plan = [line for line in lines if re.match(r"fold \d: train", line)]
    assert len(plan) == 3
    for line in plan:
        sizes = [int(n) for n in re.findall(r"(?:train|val|test) (\d+)", line)]
        assert sizes == [16, 16, 16] and re.search(
            r"test 16 \(2 speaker\(s\): synthetic:s0\d, synthetic:s0", line
        )
    assert err.index("fold 0: train") < err.index("fold 0 epoch 1/2")
    epochs = [line for line in lines if re.match(r"fold \d epoch \d/2: train/loss [\d.]+ val/loss", line)]
    assert len(epochs) == 6 and "(best " in epochs[0]
    assert sum(line.startswith("fold ") and " done: 2 epoch(s)" in line for line in lines) == 3
    assert "\r" not in err and "it/s" not in err  # no progress bar drawn into the file
    # the final table lists every test speaker of every fold, in 80 columns
    table = err[err.index("speaker-independent test folds") :]
    assert all(len(line) <= 80 for line in table.splitlines())
    assert "…" not in table
    for line in plan:  # each fold's test speakers, whole, in its row
        tested = re.search(r"test 16 \(2 speaker\(s\): (.*)\)", line).group(1)
        names = [s.split(":")[1] for s in tested.split(", ")]
        assert re.search(rf"{names[0]}, *(│[^\n]*\n[^\n]*)?{names[1]}", table), (names, table)


def test_summary_table_never_cuts_speakers_or_numbers_at_80_columns() -> None:
    from rich.console import Console

    from ser.report.tables import summary_table

    speakers = [f"ravdess:{a:02d}" for a in range(1, 13)]
    folds = [
        SimpleNamespace(
            fold=i,
            speakers={"test": speakers},
            test={"wa": 0.512, "uar": 0.456, "f1": 0.401},
            selection=SimpleNamespace(metric="val/uar", best=0.523),
            epochs=30,
            wall_seconds=12345.0,
        )
        for i in range(2)
    ]
    summary = {
        "test/wa": {"mean": 0.512, "sd": 0.011},
        "test/uar": {"mean": 0.456, "sd": 0.022},
        "test/f1": {"mean": 0.401, "sd": 0.033},
        "val/uar_best": {"mean": 0.523, "sd": 0.044},
    }
    console = Console(width=80, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    console.print(summary_table(folds, summary, "t"))
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= 80 and "…" not in text
    cells = re.sub(r"[│┃\s]+", " ", text)
    for number in ("0.512", "0.456", "0.401", "0.523", "0.011", "0.022", "0.033", "0.044", "12345"):
        assert number in cells
    assert all(text.count(f"{a:02d}") >= 2 for a in range(1, 13))


# -------------------------------------------------------------------------------------- ser predict
RAVDESS = ["neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised"]


def fake_predictions() -> list[dict]:
    probs = {label: round(1 / 8, 4) for label in RAVDESS}
    return [
        {
            "path": f"/data/Actor_{a:02d}/03-01-05-01-01-01-{a:02d}.wav",
            "label": "angry",
            "probabilities": probs,
            "windows": [{}],
            "normalization": "per clip",
        }
        for a in (1, 2)
    ] + [{"path": "/data/broken.wav", "error": "unreadable audio"}]


@pytest.mark.parametrize("terminal", [False, True])
def test_predict_table_is_plain_when_piped_or_at_80_columns(terminal: bool) -> None:
    import io

    from rich.console import Console

    from ser.inference.predict import print_predictions

    out = io.StringIO()
    print_predictions(fake_predictions(), Console(file=out, width=80, force_terminal=terminal or None))
    text = re.sub(r"\x1b\[[0-9;]*m", "", out.getvalue())
    lines = text.splitlines()
    assert lines[0].split() == ["file", "label", *RAVDESS, "windows", "normalisation"]
    assert "…" not in text and "┃" not in text
    row = lines[1].split()
    assert row[0] == "03-01-05-01-01-01-01.wav" and row[1] == "angry" and row[2:10] == ["0.12"] * 8
    assert lines[1].endswith("1  per clip") and "unreadable audio" in lines[3]


def test_predict_table_is_boxed_on_a_wide_terminal() -> None:
    import io

    from rich.console import Console

    from ser.inference.predict import print_predictions

    out = io.StringIO()
    print_predictions(fake_predictions(), Console(file=out, width=200, force_terminal=True))
    text = re.sub(r"\x1b\[[0-9;]*m", "", out.getvalue())
    assert "┃" in text and "surprised" in text and "…" not in text and "per clip" in text


# ------------------------------------------------------------------------------------ install hints
def test_install_hints_name_the_command_that_works_from_a_checkout() -> None:
    from ser.data.encoders.source import INSTALL_HINT
    from ser.extras import install_hint

    assert install_hint("ui") == 'pip install -e ".[ui]" in the ser checkout'
    assert INSTALL_HINT.startswith('pip install -e ".[ssl]"')
    # no hint anywhere still points at the unrelated `ser` on the package index
    wrong = re.compile(r"pip install ['\"]?ser\[")
    offenders = [
        f"{path.relative_to(ROOT)}:{n}"
        for path in sorted((ROOT / "ser").rglob("*.py"))
        if path.name != "extras.py"
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if wrong.search(line)
    ]
    assert not offenders and not wrong.search((ROOT / "README.md").read_text()), offenders


def test_serve_without_the_ui_extra_says_how_to_install_it(monkeypatch, capsys) -> None:
    import ser.cli.serve as serve

    monkeypatch.setattr(serve, "missing_ui_modules", lambda: ["fastapi"])
    assert main(["serve", "model.ckpt"]) == 2
    assert 'pip install -e ".[ui]"' in capsys.readouterr().err


# ------------------------------------------------------------------------------------- ser configs
def test_configs_describes_each_preset_by_its_whole_first_sentence(capsys) -> None:
    from ser.config import list_presets
    from ser.config.load import first_sentence

    assert first_sentence("A (e.g. x. y) b, e.g. c. Second.") == "A (e.g. x. y) b, e.g. c."
    assert first_sentence("Uses `a.b. c` and 0.5 lr. Next") == "Uses `a.b. c` and 0.5 lr."
    presets = dict(list_presets())
    assert all(text.endswith(".") for text in presets.values()), presets
    # the sentence went on past its first comment line
    assert presets["model/svm"].endswith("0.39 val UA, 0.39 +- 0.04 test UA.")
    assert main(["configs"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "delta and delta-delta channels, and an exponential moving average of the weights" in out


# ------------------------------------------------------------------------------------------ sweeps
def test_sweep_help_names_the_command_it_was_run_as(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["sweep", "--help"])
    assert capsys.readouterr().out.startswith("usage: ser sweep ")
    done = subprocess.run(
        [sys.executable, "-m", "ser.sweep", "--help"], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert done.stdout.startswith("usage: python -m ser.sweep ")


def test_sweep_console_table_shows_whole_key_names_and_says_seconds() -> None:
    from rich.console import Console

    from ser.sweep.results import top_table

    keys = ["model.depth", "model.kernel_size", "model.dropout", "optim.lr"]
    rows = [
        {
            "trial_id": f"train_abc_{i:05d}",
            "status": "completed",
            "best": 0.5,
            "epochs": 8,
            "wall_seconds": 123.0,
            "stopped_early": False,
            **dict(zip(keys, (3, 5, "classifier", 0.00123))),
        }
        for i in range(3)
    ]
    console = Console(width=80, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    console.print(top_table(rows, keys, "val/uar"))
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= 80
    header = text.split("┡")[0]
    assert "kernel_" in header and "size" in header and "kernel_siz\n" not in header
    assert "seconds" in header and "epochs" in header and "classifier" in text


def test_sweep_bar_does_not_count_finished_trials_as_running() -> None:
    from rich.console import Console

    from ser.sweep.run import SweepProgress

    bar = SweepProgress(2, "val/uar", "max", 2, Console(file=open("/dev/null", "w")))  # noqa: SIM115
    # Tune calls on_trial_complete / on_trial_error while the trial's status still says RUNNING
    a, b = SimpleNamespace(trial_id="a", status="RUNNING"), SimpleNamespace(trial_id="b", status="RUNNING")
    bar.record(a, {"val/uar": 0.5, "epoch": 2})
    bar.finished(a)
    bar.update([a, b])
    assert "running 1 " in bar.progress.tasks[0].description
    bar.event(b, "failed", error=True)
    bar.update([a, b])
    task = bar.progress.tasks[0]
    assert task.completed == 2 and "running 0 " in task.description and "errors 1" in task.description


# -------------------------------------------------------------------------------- report, evaluate
def test_report_header_says_which_folds_and_whether_speaker_independent() -> None:
    from ser.report.html import _fold_count, _yes_no

    assert _fold_count([0], 6) == "fold 0 of 6"
    assert _fold_count([1, 3], 6) == "folds 1, 3 of 6"
    assert _fold_count(list(range(6)), 6) == "all 6 folds"
    assert _yes_no(True).startswith("yes") and _yes_no(False).startswith("no")


@pytest.mark.slow
def test_an_evaluation_says_how_many_epochs_the_model_trained(tiny_run, tmp_path: Path) -> None:
    import shutil

    from ser.report.html import write_report
    from ser.training.evaluate import evaluate_checkpoint

    fold = tiny_run.folds[0]
    assert fold.epochs == 2
    evaluated = evaluate_checkpoint(fold.checkpoint, out_dir=tmp_path / "eval")["metrics"]["folds"][0]
    assert evaluated["epochs"] == 2  # from the run's metrics.json beside the checkpoint
    page = write_report(tmp_path / "eval").read_text()
    header = page.split("<h2>", 1)[0]
    assert "fold 0 of 4" in header and "yes: no speaker" in header
    assert "[0]" not in header and ">True<" not in header
    folds_table = page.split("<h2>Test folds</h2>", 1)[1].split("</table>", 1)[0]
    assert re.search(r"<td[^>]*>2</td>\s*</tr>", folds_table), folds_table
    # a copied checkpoint, without its run: the epochs it had trained when it was saved
    alone = tmp_path / "copy" / "model.ckpt"
    alone.parent.mkdir()
    shutil.copy(fold.checkpoint, alone)
    copied = evaluate_checkpoint(alone, out_dir=tmp_path / "eval2")["metrics"]["folds"][0]
    assert copied["epochs"] == (fold.selection.epoch or 0) + 1
