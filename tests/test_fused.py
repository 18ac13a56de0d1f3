"""Fused K-model training (ser.models.fused, ser.training.fused): the fused layers compute what K separate
networks compute, fused training of K folds (or K seeds) equals K separate `train_fold` runs, its
checkpoints are ordinary ones, and families or settings that cannot fuse fall back with a note."""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path

import pytest
import torch

from ser.config import ConfigError, load_config

# 5 speakers in 4 folds: training splits of 2 and 3 speakers (32 and 48 clips), so with batches of 12 the
# folds have 3 or 4 batches per epoch and last batches of 8 or 12: members sit out steps and run in
# groups of different batch sizes.
UNEVEN = ["data.synthetic.speakers=5", "data.batch_size=12"]
# everything the fused loop must keep per member, on at once
EVERYTHING = [
    "model.dropout=both",
    "data.augment.specaugment_p=0.5",
    "data.augment.freq_warp_p=0.5",
    "data.augment.mixup_alpha=0.4",
    "optim.ema_decay=0.9",
    "optim.l2=0.001",
    "optim.grad_clip=0.5",
    "optim.schedule=cosine",
    "trainer.max_epochs=3",
]
OTHERS = [
    "optim.optimizer=sgd",
    "optim.weight_decay=0.01",
    "optim.schedule=plateau",
    "optim.plateau_patience=0",
    "trainer.early_stopping_patience=1",
    "data.features.normalize=train",
    "data.class_weights=true",
    "model.time_pooling=attention",
    "model.dropout=conv",
    "trainer.max_epochs=4",
]


# ------------------------------------------------------------------------------------ fused layers
def _nets(overrides: list[str], shape: tuple[int, ...], k: int = 3) -> list[torch.nn.Module]:
    from ser.models.dropout import seed_dropout
    from ser.models.registry import build_model

    cfg = load_config(overrides=overrides)
    nets = []
    for i in range(k):
        torch.manual_seed(i)
        nets.append(seed_dropout(build_model(cfg.model, shape, 5), torch.Generator().manual_seed(100 + i)))
    return nets


def _assert_fused_call_matches_separate_calls(fused_forward, nets, alone, batch: int, shape) -> None:
    """One fused call of `nets` gives the outputs and parameter gradients of `alone` (their copies) called
    one by one on the same inputs."""
    xs = [torch.randn(batch, *shape) for _ in nets]
    fused = fused_forward(nets, xs)
    separate = [net(x) for net, x in zip(alone, xs)]
    for a, b in zip(fused, separate):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    sum(o.square().sum() for o in fused).backward()
    sum(o.square().sum() for o in separate).backward()
    for net, ref in zip(nets, alone):
        for p, q in zip(net.parameters(), ref.parameters()):
            torch.testing.assert_close(p.grad, q.grad, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    ("overrides", "shape"),
    [
        (["model.dropout=both", "model.depth=3", "model.channels=4"], (2, 32, 40)),
        (["model.time_pooling=attention", "model.dropout=both", "model.classifier_layers=2"], (1, 32, 40)),
        (["model.time_pooling=stats", "model.batch_norm=false", "model.pool=avg"], (1, 32, 40)),
        (["model.name=sentan", "model.depth=2", "model.dropout=conv"], (3, 32, 40)),
        (["model.name=emotion_detector2", "model.dropout=both", "model.activation=gelu"], (1, 32, 40)),
        (["model.name=feature_mlp", "model.dropout=both", "model.classifier_layers=2"], (193,)),
        (["model.name=feature_mlp", "model.conv1d=true", "model.dropout=both", "model.depth=2"], (193,)),
        (["model.name=cnn_lstm", "model.depth=2", "model.lstm_hidden=8", "model.dropout=both"], (1, 16, 12)),
        (
            ["model.name=cnn_lstm", "model.depth=1", "model.lstm_hidden=8", "model.lstm_pooling=last"],
            (1, 16, 12),
        ),
    ],
)
def test_fused_layers_compute_what_each_network_computes_alone(overrides, shape) -> None:
    """Outputs, gradients, batch-norm statistics and dropout masks (from each net's own generator) of one
    fused call equal K separate calls, in training and evaluation mode."""
    from ser.models.fused import check_fusable, fused_forward

    nets = _nets(overrides, shape)
    check_fusable(nets)
    alone = copy.deepcopy(nets)  # the same weights and generator states, run one by one
    for training in (True, False):
        for net in nets + alone:
            net.train(training)
        _assert_fused_call_matches_separate_calls(fused_forward, nets, alone, 6, shape)
        for net, ref in zip(nets, alone):
            for p, q in zip(net.buffers(), ref.buffers()):
                torch.testing.assert_close(p, q)
            net.zero_grad()
            ref.zero_grad()


@pytest.mark.parametrize(
    ("overrides", "shape"),
    [
        (["model.time_pooling=attention", "model.depth=2", "model.batch_norm=false"], (2, 32, 40)),
        (["model.name=feature_mlp", "model.conv1d=true", "model.depth=2"], (193,)),
    ],
)
def test_grouped_convolution_as_on_a_gpu_matches_separate_convolutions(monkeypatch, overrides, shape) -> None:
    """On GPUs K convolutions run as one grouped convolution (on CPU per model, which oneDNN runs faster):
    the grouped form, forced on CPU here, computes the same outputs and gradients."""
    from ser.models import fused

    monkeypatch.setattr(fused, "GROUPED_CONV_DEVICES", ("cpu",))
    nets = _nets(overrides, shape)
    alone = copy.deepcopy(nets)
    _assert_fused_call_matches_separate_calls(fused.fused_forward, nets, alone, 5, shape)


def test_networks_without_a_fused_form_are_refused_by_name() -> None:
    from ser.models.fused import NotFusable, check_fusable

    lstm_dropout = ["model.name=cnn_lstm", "model.depth=1", "model.lstm_layers=2", "model.dropout=conv"]
    with pytest.raises(NotFusable, match="LSTM layers draws from torch's global generator"):
        check_fusable(_nets(lstm_dropout, (1, 32, 40), k=2))
    with pytest.raises(NotFusable, match="LSTM at '0'"):
        check_fusable([torch.nn.Sequential(torch.nn.LSTM(4, 4)), torch.nn.Sequential(torch.nn.LSTM(4, 4))])
    with pytest.raises(NotFusable, match="differs in architecture"):
        check_fusable(
            [*_nets(["model.depth=2"], (1, 32, 40), k=1), *_nets(["model.depth=3"], (1, 32, 40), k=1)]
        )


# ---------------------------------------------------------------------------------------- decision
def test_trainer_fused_chooses_the_path_and_says_why_a_family_falls_back(monkeypatch, tmp_path) -> None:
    from ser.training import fuse_decision as fused

    def cfg(*extra: str):
        return load_config(overrides=list(extra))

    assert not fused.decide(cfg("trainer.fused=never"), 6).fused
    assert not fused.decide(cfg("trainer.fused=always"), 1).fused  # one model: nothing to fuse
    assert fused.decide(cfg("trainer.fused=always"), 6) == fused.Decision(True)
    monkeypatch.setattr(fused, "resolve_device", lambda _cfg: torch.device("cpu"))
    # auto on a CPU: the one loop, networks one after another (fusing measured slower there)
    assert fused.decide(cfg(), 6) == fused.Decision(True, fuse_network=False)
    assert fused.decide(cfg(), 6).mode == "lockstep"
    monkeypatch.setattr(fused, "resolve_device", lambda _cfg: torch.device("cuda", 0))
    assert fused.decide(cfg(), 6) == fused.Decision(True)  # auto: on a GPU
    stacked = ("model.name=cnn_lstm", "model.lstm_layers=2", "model.dropout=both", "trainer.fused=always")
    for family, why in (
        (stacked, "LSTM layers"),
        (("model.name=svm", "trainer.fused=always"), "scikit-learn"),
    ):
        decision = fused.decide(cfg(*family), 6)
        assert not decision.fused and why in decision.note and "\n" not in decision.note
    assert fused.decide(cfg("model.name=cnn_lstm", "trainer.fused=always"), 6).fused  # its convs fuse
    decision = fused.decide(cfg("trainer.precision=bf16-mixed"), 6)
    assert not decision.fused and "trainer.precision" in decision.note
    # a resumed run goes on along the path that wrote its states
    state = tmp_path / "fold_0.ckpt"
    torch.save({fused.FUSED_STATE: {}}, state)
    assert fused.decide(cfg("trainer.fused=never"), 2, {0: state}).fused
    torch.save({"state_dict": {}}, state)
    assert not fused.decide(cfg("trainer.fused=always"), 2, {0: state}).fused


def test_schema_lists_the_switch_once() -> None:
    from ser.config.schema import CHOICES

    assert CHOICES["trainer.fused"] == ("auto", "always", "never")
    with pytest.raises(ConfigError, match="trainer.fused"):
        load_config(overrides=["trainer.fused=yes"])


# ----------------------------------------------------------------------------------- equivalence
def _separate(cfg, prepared, folds, out: Path) -> tuple[list, list[dict]]:
    """K ordinary `train_fold` runs, with each fold's weights when fit ends."""
    from lightning.pytorch.callbacks import Callback

    from ser.training.fold import train_fold

    class FinalWeights(Callback):
        def on_train_end(self, trainer, pl_module) -> None:
            self.state = {k: v.detach().clone() for k, v in pl_module.state_dict().items()}

    results, finals = [], []
    for k in folds:
        final = FinalWeights()
        results.append(train_fold(cfg, prepared, k, out / f"fold_{k}", callbacks=[final], write_plots=False))
        finals.append(final.state)
    return results, finals


def _fused(prepared, specs, fuse_network: bool = True) -> tuple[list, list[dict]]:
    from ser.training.fused import FusedRun

    run = FusedRun(prepared, specs, write_plots=False, fuse_network=fuse_network)
    run.fit()
    finals = [{k: v.detach().clone() for k, v in m.model.state_dict().items()} for m in run.members]
    return run.results(time.perf_counter()), finals


def _assert_same_training(separate, fused, finals_a, finals_b) -> None:
    for a, b, wa, wb in zip(separate, fused, finals_a, finals_b):
        assert [h["val/uar"] for h in b.history] == [h["val/uar"] for h in a.history], a.fold
        assert len(b.history) == len(a.history) and a.epochs == b.epochs
        for row_a, row_b in zip(a.history, b.history):
            assert set(row_a) == set(row_b)
            assert row_b == pytest.approx(row_a, rel=1e-4, abs=1e-6)
        assert b.selection == a.selection
        assert b.test["confusion"] == a.test["confusion"]
        assert (b.fold, b.speakers, b.sizes, b.parameters) == (a.fold, a.speakers, a.sizes, a.parameters)
        assert set(wa) == set(wb)
        for key in wa:
            torch.testing.assert_close(wb[key], wa[key], rtol=1e-4, atol=1e-5, msg=f"fold {a.fold} {key}")
        best_a = torch.load(a.checkpoint, weights_only=True)["state_dict"]
        best_b = torch.load(b.checkpoint, weights_only=True)["state_dict"]
        for key in best_a:
            torch.testing.assert_close(best_b[key], best_a[key], rtol=1e-4, atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize(
    "settings", [EVERYTHING, OTHERS], ids=["ema-dropout-specaugment-mixup", "sgd-plateau"]
)
def test_fused_folds_train_exactly_like_separate_folds(tiny_cfg_factory, tmp_path: Path, settings) -> None:
    """Fused K=3 (uneven folds: different batch counts and last-batch sizes) gives every fold the same
    per-epoch validation UA, history, selected epoch, test confusion, best checkpoint and final weights
    as K separate `train_fold` runs, within float tolerance."""
    from ser.data.prepared import prepare_data
    from ser.training.fused import MemberSpec

    cfg = tiny_cfg_factory(*UNEVEN, *settings)
    prepared = prepare_data(cfg, progress=False)
    sizes = {len(f.train) for f in prepared.folds[:3]}
    assert len(sizes) == 2  # the case that needs the care
    separate, finals_a = _separate(cfg, prepared, [0, 1, 2], tmp_path / "separate")
    specs = [MemberSpec(cfg, k, tmp_path / "fused" / f"fold_{k}") for k in (0, 1, 2)]
    fused, finals_b = _fused(prepared, specs)
    _assert_same_training(separate, fused, finals_a, finals_b)
    if settings is EVERYTHING:  # the same loop, networks one after another (auto on a CPU)
        specs = [MemberSpec(cfg, k, tmp_path / "lockstep" / f"fold_{k}") for k in (0, 1, 2)]
        lockstep, finals_c = _fused(prepared, specs, fuse_network=False)
        _assert_same_training(separate, lockstep, finals_a, finals_c)
    if "trainer.early_stopping_patience=1" in settings:
        assert any(r.epochs < 4 for r in separate)  # early stopping did stop a fold


@pytest.mark.slow
def test_a_seed_ensemble_trains_as_one_fused_model(tiny_cfg_factory, tmp_path: Path) -> None:
    """K seeds on one split as one fused model: member j equals `train_fold` with trainer.seed = seeds[j]."""
    from ser.data.prepared import prepare_data
    from ser.training.fused import FusedRun, MemberSpec, train_seeds_fused

    cfg = tiny_cfg_factory("model.dropout=both", "data.augment.specaugment_p=0.5", "optim.ema_decay=0.9")
    prepared = prepare_data(cfg, progress=False)
    seeds = [3, 11]
    separate, finals_a = [], []
    for seed in seeds:
        seeded = cfg.copy()
        seeded.trainer.seed = seed
        results, finals = _separate(seeded, prepared, [1], tmp_path / f"separate_{seed}")
        separate += results
        finals_a += finals
    specs = []
    for seed in seeds:
        seeded = cfg.copy()
        seeded.trainer.seed = seed
        specs.append(MemberSpec(seeded, 1, tmp_path / "fused" / f"seed_{seed}"))
    fused, finals_b = _fused(prepared, specs)
    _assert_same_training(separate, fused, finals_a, finals_b)
    assert fused[0].history != fused[1].history  # two different models, not one twice
    results = train_seeds_fused(cfg, prepared, seeds, tmp_path / "ensemble", fold=1, write_plots=False)
    assert [Path(r.checkpoint).parent.name for r in results] == ["seed_3", "seed_11"]
    for got, want in zip(results, fused):
        assert [h["val/uar"] for h in got.history] == [h["val/uar"] for h in want.history]
    assert FusedRun  # the class the lead's ensemble code can drive directly


# ---------------------------------------------------------------------------- checkpoints and fit
@pytest.mark.slow
def test_fit_all_folds_fused_writes_ordinary_runs_and_checkpoints(tiny_cfg_factory, tmp_path: Path) -> None:
    """`ser fit data.fold=all trainer.fused=always`: the run directory of a per-fold run (metrics.json with
    the same schema, CSV logs, plots), and each fold's best checkpoint scores the same in `ser evaluate`."""
    from ser.training.evaluate import evaluate_checkpoint
    from ser.training.fit import fit_folds

    cfg = tiny_cfg_factory("data.fold=all", "trainer.fused=always", "trainer.run_name=fused_fit")
    run = fit_folds(cfg)
    metrics = json.loads((run.run_dir / "metrics.json").read_text())
    assert metrics["execution"] == {"mode": "fused", "note": None}
    assert [f["fold"] for f in metrics["folds"]] == [0, 1, 2, 3]
    assert (run.run_dir / "curves.png").is_file() and (run.run_dir / "confusion_matrix.png").is_file()
    for fold in run.folds:
        fold_dir = run.run_dir / f"fold_{fold.fold}"
        assert (
            fold.checkpoint == str(fold_dir / "best.ckpt") and (fold_dir / "logs" / "metrics.csv").is_file()
        )
        assert (fold_dir / "confusion_matrix.png").is_file() and (fold_dir / "predictions.npz").is_file()
    fold = run.folds[2]
    evaluated = evaluate_checkpoint(fold.checkpoint, out_dir=tmp_path / "eval")["metrics"]["folds"][0]
    assert evaluated["fold"] == 2
    assert evaluated["test"]["confusion"] == fold.test["confusion"]


# ------------------------------------------------------------------------------------- sweep trials
def _lockstep(cfg, prepared, folds, out: Path, resume=None, stop_after: int | None = None):
    """A CV trial's training without Ray: every epoch's fold-mean report and, per epoch, a copy of the
    resume states the trial would hand Tune."""
    from ser.sweep.trials import EpochReporter, train_folds_in_lockstep

    scratch = out / "scratch"
    saved = out / "saved"
    reports: list[dict] = []
    reporter: EpochReporter

    def report(summary: dict) -> None:
        reports.append(summary)
        epoch_dir = saved / f"epoch_{reporter.epoch}"
        epoch_dir.mkdir(parents=True)
        for state in reporter.state_dir(reporter.epoch).glob("*.ckpt"):
            (epoch_dir / state.name).write_bytes(state.read_bytes())
        if stop_after is not None and reporter.epoch + 1 >= stop_after:
            raise KeyboardInterrupt  # the trial is interrupted here

    reporter = EpochReporter(folds, scratch, report=report)
    execution: dict = {}
    results = train_folds_in_lockstep(cfg, prepared, folds, out, reporter, resume or {}, execution)
    return results, reports, execution, saved


@pytest.mark.slow
def test_cv_trial_fuses_reports_fold_means_and_resumes_where_it_stopped(tiny_cfg_factory, tmp_path) -> None:
    """A CV trial with trainer.fused=always trains its folds fused, reports the fold mean every epoch, and a
    trial interrupted after epoch 1 and resumed from the reported states (here with trainer.fused=auto:
    on a CPU the same loop without fusing the networks) ends with the curves and best checkpoints of the
    uninterrupted trial."""
    from ser.data.prepared import prepare_data

    cfg = tiny_cfg_factory(
        *UNEVEN, "trainer.fused=always", "model.dropout=both", "data.augment.specaugment_p=0.5",
        "optim.ema_decay=0.9", "optim.schedule=tristage", "trainer.max_epochs=3",
    )  # fmt: skip
    prepared = prepare_data(cfg, progress=False)
    whole, reports, execution, _ = _lockstep(cfg, prepared, [0, 1], tmp_path / "whole")
    assert execution == {"mode": "fused", "note": None}
    assert [r["epoch"] for r in reports] == [1, 2, 3]
    for report in reports:
        assert report["val/uar"] == pytest.approx((report["fold0/val/uar"] + report["fold1/val/uar"]) / 2)
    with pytest.raises(KeyboardInterrupt):
        _lockstep(cfg, prepared, [0, 1], tmp_path / "cut", stop_after=1)
    states = {k: tmp_path / "cut" / "saved" / "epoch_0" / f"fold_{k}.ckpt" for k in (0, 1)}
    auto = cfg.copy()
    auto.trainer.fused = "auto"
    resumed, later, execution, _ = _lockstep(auto, prepared, [0, 1], tmp_path / "cut", resume=states)
    assert execution["mode"] == ("fused" if torch.cuda.is_available() else "lockstep")
    assert [r["epoch"] for r in later] == [2, 3]
    for a, b in zip(whole, resumed):
        assert len(b.history) == len(a.history) == 3
        for row_a, row_b in zip(a.history, b.history):
            assert row_b == pytest.approx(row_a, rel=1e-4, abs=1e-6)
        best_a = torch.load(a.checkpoint, weights_only=True)["state_dict"]
        best_b = torch.load(b.checkpoint, weights_only=True)["state_dict"]
        for key in best_a:
            torch.testing.assert_close(best_b[key], best_a[key], rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_cv_trial_of_a_family_that_cannot_fuse_trains_in_threads_with_a_note(
    tiny_cfg_factory, tmp_path
) -> None:
    from ser.data.prepared import prepare_data

    cfg = tiny_cfg_factory(
        "model.name=cnn_lstm",
        "model.depth=1",
        "model.lstm_hidden=8",
        "model.lstm_layers=2",
        "model.dropout=conv",
        "trainer.max_epochs=1",
        "trainer.fused=always",
    )
    prepared = prepare_data(cfg, progress=False)
    results, reports, execution, _ = _lockstep(cfg, prepared, [0, 1], tmp_path)
    assert execution["mode"] == "threads" and "LSTM layers" in execution["note"]
    assert [r.fold for r in results] == [0, 1] and len(reports) == 1


def test_a_fused_run_refuses_what_it_cannot_fuse_with_the_key(tiny_cfg_factory, tmp_path: Path) -> None:
    from ser.training.fused import MemberSpec, train_fused

    cfg = tiny_cfg_factory(
        "model.name=cnn_lstm", "model.depth=1", "model.lstm_layers=2", "model.dropout=conv"
    )
    with pytest.raises(ConfigError, match="trainer.fused.*LSTM"):
        train_fused(None, [MemberSpec(cfg, 0, tmp_path)])  # refused before any data is touched
    other = tiny_cfg_factory("model.depth=3")
    with pytest.raises(ValueError, match="share one config"):
        train_fused(None, [MemberSpec(tiny_cfg_factory(), 0, tmp_path), MemberSpec(other, 1, tmp_path)])


@pytest.mark.slow
def test_model_ensemble_members_train_fused_where_fusing_is_chosen(tiny_cfg_factory) -> None:
    """`model.ensemble=2` with the fused path chosen (as on a GPU) trains the members as one fused seed
    ensemble, and the averaged model equals the one whose members trained one after another."""
    from ser.training.fit import fit_folds

    runs = {
        mode: fit_folds(
            tiny_cfg_factory(f"trainer.run_name=ens-{mode}", "model.ensemble=2", f"trainer.fused={mode}")
        ).folds[0]
        for mode in ("never", "always")
    }
    one_by_one, fused = runs["never"], runs["always"]
    assert [Path(m["checkpoint"]).parent.name for m in one_by_one.members] == ["member_0", "member_1"]
    assert [Path(m["checkpoint"]).parent.name for m in fused.members] == ["seed_0", "seed_1000"]
    assert [m["seed"] for m in fused.members] == [m["seed"] for m in one_by_one.members] == [0, 1000]
    for got, want in zip(fused.members, one_by_one.members):
        assert got["selection"]["best"] == pytest.approx(want["selection"]["best"], abs=1e-4)
        assert got["epochs"] == want["epochs"]
    assert fused.selection.best == pytest.approx(one_by_one.selection.best, abs=1e-4)
    assert fused.test["confusion"] == one_by_one.test["confusion"]
