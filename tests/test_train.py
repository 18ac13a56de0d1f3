"""`fit`, `evaluate` and `predict` end to end on the tiny synthetic corpus."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from lightning.pytorch.callbacks import Callback

from ser.cli import main
from ser.config import load_config
from ser.inference.checkpoint import CheckpointError, read_checkpoint
from ser.inference.predict import predict_paths
from ser.inference.scorer import window_starts
from ser.models import CKPT_KEY
from ser.training.evaluate import evaluate_checkpoint
from ser.training.fit import fit_folds


def test_run_directory_holds_everything(tiny_run) -> None:
    run_dir = tiny_run.run_dir
    for name in ("config.yaml", "metrics.json", "confusion_matrix.png", "curves.png"):
        assert (run_dir / name).stat().st_size > 0, name
    metrics = json.loads((run_dir / "metrics.json").read_text())
    fold = metrics["folds"][0]
    assert set(fold["test"]) >= {"wa", "uar", "f1", "per_class_recall", "confusion"}
    assert metrics["schema_version"] == 2 and metrics["status"] == "completed"
    assert fold["selection"]["metric"] == "val/uar" and fold["selection"]["best"] is not None
    assert fold["epochs"] == 2 and fold["parameters"] > 0 and fold["wall_seconds"] > 0
    assert Path(fold["checkpoint"]).is_file()
    assert set(metrics["summary"]) >= {"test/wa", "test/uar", "test/f1"}
    # the test speakers are disjoint from the ones the model was selected and trained on
    speakers = fold["speakers"]
    assert not set(speakers["test"]) & (set(speakers["train"]) | set(speakers["val"]))
    # the confusion matrix counts every test utterance once
    assert np.sum(fold["test"]["confusion"]) == fold["sizes"]["test"]
    # the resolved config is loadable again by `ser fit --config`
    again = load_config([run_dir / "config.yaml"])
    assert again.model.depth == 2 and again.data.synthetic.speakers == 4


def test_same_seed_same_metrics(tiny_cfg_factory, tiny_run) -> None:
    again = fit_folds(tiny_cfg_factory("trainer.run_name=tiny-again"))
    first, second = tiny_run.folds[0], again.folds[0]
    assert first.test["confusion"] == second.test["confusion"]
    assert first.history[-1]["val/loss"] == pytest.approx(second.history[-1]["val/loss"], rel=1e-6)


def test_evaluate_reproduces_fit_test_metrics(tiny_run, tmp_path: Path) -> None:
    fold = tiny_run.folds[0]
    result = evaluate_checkpoint(fold.checkpoint, out_dir=tmp_path / "eval")
    evaluated = result["metrics"]["folds"][0]["test"]
    assert evaluated["confusion"] == fold.test["confusion"]
    assert evaluated["uar"] == pytest.approx(fold.test["uar"])
    # the same metrics.json schema as the fit run
    fit_metrics = json.loads((tiny_run.run_dir / "metrics.json").read_text())
    assert set(fit_metrics["folds"][0]) == set(result["metrics"]["folds"][0])
    assert (tmp_path / "eval" / "confusion_matrix.png").stat().st_size > 0


def test_evaluate_warns_when_test_speakers_were_trained_on(tiny_run, tmp_path: Path) -> None:
    ckpt = tiny_run.folds[0].checkpoint
    with pytest.warns(UserWarning, match="not speaker-independent"):
        evaluate_checkpoint(ckpt, overrides=["data.fold=1"], out_dir=tmp_path / "leak")


def test_predict_files_windows_and_errors(tiny_run, tmp_path: Path) -> None:
    ckpt = tiny_run.folds[0].checkpoint
    labels = tiny_run.metrics["labels"]
    rng = np.random.default_rng(0)
    short = tmp_path / "short.wav"
    sf.write(short, (0.1 * rng.standard_normal(8000)).astype(np.float32), 16000)
    long = tmp_path / "long.flac"
    sf.write(long, (0.1 * rng.standard_normal(16000 * 4)).astype(np.float32), 16000, format="FLAC")
    broken = tmp_path / "broken.wav"
    broken.write_text("not audio")
    results = {Path(r["path"]).name: r for r in predict_paths(ckpt, [str(short), str(long), str(broken)])}
    assert results["short.wav"]["label"] in labels
    assert sum(results["short.wav"]["probabilities"].values()) == pytest.approx(1.0, abs=1e-3)
    assert len(results["long.flac"]["windows"]) == len(window_starts(16000 * 4, 16000, 8000)) == 7
    assert "broken.wav" in results and "error" in results["broken.wav"]


def test_predict_cli_json_lines(tiny_run, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    ckpt = tiny_run.folds[0].checkpoint
    folder = tmp_path / "clips"
    folder.mkdir()
    for i in range(2):
        sf.write(
            folder / f"c{i}.wav",
            (0.1 * np.random.default_rng(i).standard_normal(16000)).astype(np.float32),
            16000,
        )
    assert main(["predict", ckpt, str(folder), "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    assert [Path(x["path"]).name for x in lines] == ["c0.wav", "c1.wav"]


def test_checkpoint_errors(tmp_path: Path, tiny_run) -> None:
    with pytest.raises(CheckpointError, match="not found"):
        read_checkpoint(tmp_path / "missing.ckpt")
    garbage = tmp_path / "garbage.ckpt"
    garbage.write_bytes(b"\x00\x01 definitely not a checkpoint")
    with pytest.raises(CheckpointError, match="garbage.ckpt"):
        read_checkpoint(garbage)
    import torch

    foreign = tmp_path / "foreign.ckpt"
    torch.save({"state_dict": {"w": torch.zeros(2)}}, foreign)
    with pytest.raises(CheckpointError, match="not a ser checkpoint"):
        read_checkpoint(foreign)
    # weights of one model family do not load into another
    ckpt = read_checkpoint(tiny_run.folds[0].checkpoint)
    from ser.inference.checkpoint import restore_classifier

    other = ckpt.cfg.copy()
    other.model.name = "cnn_lstm"
    with pytest.raises(CheckpointError, match="do not fit model 'cnn_lstm'"):
        restore_classifier(ckpt, other)


def test_cross_validation_over_all_folds(tiny_cfg_factory) -> None:
    result = fit_folds(tiny_cfg_factory("data.fold=all", "trainer.max_epochs=1", "trainer.run_name=cv"))
    metrics = result.metrics
    assert [f["fold"] for f in metrics["folds"]] == [0, 1, 2, 3]
    tested = [s for f in metrics["folds"] for s in f["speakers"]["test"]]
    assert sorted(tested) == sorted(set(tested)) and len(tested) == 4  # every speaker tested exactly once
    assert metrics["summary"]["test/uar"]["n"] == 4


@pytest.mark.slow  # computes the handcrafted features (librosa's chroma, contrast, tonnetz): 40 s loaded
def test_svm_baseline_reports_same_metrics(tiny_cfg_factory) -> None:
    result = fit_folds(tiny_cfg_factory("model.name=svm", "trainer.run_name=svm"))
    fold = result.metrics["folds"][0]
    assert result.metrics["feature"] == "handcrafted"
    assert fold["selection"]["best"] == fold["history"][0]["val/uar"]  # reported like any fold's epoch
    assert 0.0 <= fold["test"]["uar"] <= 1.0 and np.sum(fold["test"]["confusion"]) == fold["sizes"]["test"]
    from ser.report.metrics import classification_metrics
    from ser.report.predictions import read_predictions

    pred = read_predictions(result.run_dir / "fold_0" / "predictions.npz")  # the SVM's rows, no embeddings
    assert pred.embeddings is None and len(pred) == fold["sizes"]["test"]
    assert classification_metrics(pred.y, pred.pred, pred.labels)["confusion"] == fold["test"]["confusion"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["model.name=transformer9000"], "transformer9000"),
        (["model.kernel_size=99"], "model.kernel_size"),
        (["data.fold=7"], "data.fold"),
        (["data.features.kind=handcrafted"], "data.features.kind"),
        (["model.name=feature_mlp", "data.features.deltas=2"], "data.features.deltas"),
        (["optim.lr=1e30", "optim.optimizer=sgd", "optim.momentum=0.0"], "loss became"),
        (["optim.ema_decay=1.0"], "optim.ema_decay"),
    ],
)
def test_bad_input_is_a_clear_cli_error(
    tiny_env, tiny_overrides, overrides, message, capsys: pytest.CaptureFixture, tmp_path: Path
) -> None:
    code = main(
        ["fit", *tiny_overrides, "trainer.max_epochs=1", f"trainer.output_dir={tmp_path}", *overrides]
    )
    assert code != 0
    assert message in capsys.readouterr().err


def test_delta_channels_and_mixup_train_and_reload_from_the_checkpoint(tiny_cfg_factory, tmp_path) -> None:
    result = fit_folds(
        tiny_cfg_factory(
            "trainer.run_name=tiny-deltas",
            "trainer.max_epochs=1",
            "data.features.deltas=2",
            "data.augment.mixup_alpha=0.4",
        )
    )
    fold = result.folds[0]
    ckpt = torch.load(fold.checkpoint, weights_only=True)
    assert ckpt[CKPT_KEY]["feature_shape"][0] == 3  # log-mel, delta, delta-delta; the cache holds one
    assert ckpt["state_dict"]["net.features.blocks.0.0.weight"].shape[1] == 3
    evaluated = evaluate_checkpoint(fold.checkpoint, out_dir=tmp_path / "eval")["metrics"]["folds"][0]
    assert evaluated["test"]["confusion"] == fold.test["confusion"]  # reloaded with the same front end


def test_history_matches_the_csv_log_epoch_by_epoch(tiny_run) -> None:
    import csv

    fold = tiny_run.folds[0]
    log = tiny_run.run_dir / "fold_0" / "logs" / "metrics.csv"
    with log.open() as handle:
        rows = [r for r in csv.DictReader(handle) if r.get("val/uar")]
    csv_val = {int(r["epoch"]): float(r["val/uar"]) for r in rows}
    history = {int(h["epoch"]): h for h in fold.history}
    assert sorted(history) == sorted(csv_val) == [0, 1]
    for epoch, value in csv_val.items():
        assert history[epoch]["val/uar"] == pytest.approx(value)
        assert "train/loss" in history[epoch]  # each epoch's own training metrics, filled in after it
    assert fold.selection.best == pytest.approx(max(csv_val.values()))


def test_speaker_normalised_model_scores_files_with_their_speakers_statistics(
    tiny_cfg_factory, tmp_path: Path
) -> None:
    result = fit_folds(tiny_cfg_factory("trainer.run_name=tiny-speaker", "data.features.normalize=speaker"))
    fold = result.folds[0]
    evaluated = evaluate_checkpoint(fold.checkpoint, out_dir=tmp_path / "eval")["metrics"]["folds"][0]
    assert evaluated["test"]["confusion"] == fold.test["confusion"]  # evaluate standardises like fit
    rng = np.random.default_rng(0)
    quiet, loud = tmp_path / "quiet.wav", tmp_path / "loud.wav"
    sf.write(quiet, (0.01 * rng.standard_normal(16000 * 2)).astype(np.float32), 16000)
    sf.write(loud, np.clip(0.8 * rng.standard_normal(16000 * 2), -1, 1).astype(np.float32), 16000)
    ckpt = fold.checkpoint
    alone = predict_paths(ckpt, [str(quiet)])[0]
    together = predict_paths(ckpt, [str(quiet), str(loud)], same_speaker=True)[0]
    per_file = predict_paths(ckpt, [str(quiet), str(loud)])[0]  # the default: each file on its own
    assert per_file["probabilities"] == alone["probabilities"]  # the other file changes nothing
    # one speaker: the loud file's frames moved the quiet file's statistics
    assert together["probabilities"] != alone["probabilities"]
    assert per_file["normalization"] == "speaker: this file"
    assert together["normalization"] == "speaker: all 2 file(s) as one"
    # a speaker pattern groups files by the speaker their paths name; a file it does not match is alone
    (tmp_path / "A").mkdir()
    (tmp_path / "B").mkdir()
    files = [tmp_path / "A" / "quiet.wav", tmp_path / "A" / "loud.wav", tmp_path / "B" / "quiet.wav"]
    for target, source in zip(files, (quiet, loud, quiet)):
        target.write_bytes(source.read_bytes())
    other = tmp_path / "quiet_other.wav"
    other.write_bytes(quiet.read_bytes())
    grouped = predict_paths(ckpt, [*map(str, files), str(other)], speaker_pattern=r"/(?P<speaker>[AB])/")
    assert grouped[0]["probabilities"] == together["probabilities"]  # A: quiet + loud, as one speaker
    assert grouped[2]["probabilities"] == alone["probabilities"]  # B: quiet alone
    assert grouped[3]["probabilities"] == alone["probabilities"]
    assert [g["normalization"] for g in grouped] == [
        "speaker 'A': 2 file(s)",
        "speaker 'A': 2 file(s)",
        "speaker 'B': 1 file(s)",
        "speaker: this file (pattern did not match)",
    ]
    assert main(["predict", ckpt, str(quiet), str(loud), "--speaker-pattern", "(", "--json"]) == 2
    assert main(["predict", ckpt, str(quiet), str(loud), "--same-speaker", "--json"]) == 0
    assert main(["predict", ckpt, str(quiet), str(loud), "--speaker-per-file", "--json"]) == 0


class WeightLog(Callback):
    """Copies of one weight tensor: after every optimizer step, as validated, and as tested."""

    def __init__(self, name: str) -> None:
        self.name, self.steps, self.validated, self.tested = name, [], [], []

    def _weight(self, module) -> torch.Tensor:
        return dict(module.named_parameters())[self.name].detach().clone()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.steps.append(self._weight(pl_module))

    def on_validation_epoch_start(self, trainer, pl_module) -> None:
        self.validated.append(self._weight(pl_module))

    def on_test_start(self, trainer, pl_module) -> None:
        self.tested.append(self._weight(pl_module))


def test_ema_weights_are_validated_saved_and_tested(tiny_cfg_factory, tmp_path: Path) -> None:
    decay, name = 0.6, "net.head.1.weight"
    log = WeightLog(name)
    result = fit_folds(
        tiny_cfg_factory("trainer.run_name=tiny-ema", "trainer.max_epochs=1", f"optim.ema_decay={decay}"),
        callbacks_for_fold=lambda fold: [log],
    )
    assert len(log.steps) >= 2  # else the average is just the last weights
    expected = log.steps[0]  # the first update copies the weights; then ema = d * ema + (1 - d) * w
    for weights in log.steps[1:]:
        expected = decay * expected + (1 - decay) * weights
    assert not torch.allclose(expected, log.steps[-1])
    fold = result.folds[0]
    saved = torch.load(fold.checkpoint, weights_only=True)["state_dict"][name]
    for seen in (log.validated[0], saved, log.tested[0]):
        torch.testing.assert_close(seen, expected)
    evaluated = evaluate_checkpoint(fold.checkpoint, out_dir=tmp_path / "eval")["metrics"]["folds"][0]
    assert evaluated["test"]["confusion"] == fold.test["confusion"]


def test_an_ensemble_averages_its_members_and_loads_everywhere(
    tiny_cfg_factory, tiny_run, tmp_path: Path
) -> None:
    from ser.inference.scorer import load_scorer

    result = fit_folds(tiny_cfg_factory("trainer.run_name=tiny-ensemble", "model.ensemble=2"))
    fold = result.folds[0]
    assert [m["seed"] for m in fold.members] == [0, 1000]
    # member 0 is the single model of the same seed, trained the same way
    single = tiny_run.folds[0]
    assert [h["val/uar"] for h in single.history] == pytest.approx([h["val/uar"] for h in fold.history])
    # one ordinary checkpoint: its probabilities are the mean of the members' probabilities
    clip = (0.1 * np.random.default_rng(0).standard_normal((3, 16000))).astype(np.float32)
    ensemble = load_scorer(fold.checkpoint)
    members = [load_scorer(m["checkpoint"]) for m in fold.members]
    mean = np.mean([m.probabilities(clip) for m in members], axis=0)
    np.testing.assert_allclose(ensemble.probabilities(clip), mean, atol=1e-5)
    evaluated = evaluate_checkpoint(fold.checkpoint, out_dir=tmp_path / "eval")["metrics"]["folds"][0]
    assert evaluated["test"]["confusion"] == fold.test["confusion"]
    assert fold.selection.best is not None and fold.selection.epoch is None  # the ensemble's validation UA


def test_ensembles_are_refused_in_sweeps(tmp_path: Path) -> None:
    from ser.config import ConfigError
    from ser.sweep.spec import load_sweep

    path = tmp_path / "s.yaml"
    path.write_text("name: s\nspace:\n  model.ensemble: {choice: [1, 3]}\n")
    with pytest.raises(ConfigError, match="model.ensemble"):
        load_sweep(path)
