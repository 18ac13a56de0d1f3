"""EmotionClassifier: learning, metric keys, L2 and weight decay, schedules, divergence, augmentation."""

from __future__ import annotations

import csv

import lightning as L
import pytest
import torch
import torch.nn.functional as F
from lightning.pytorch.loggers import CSVLogger
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from ser.config import OptimConfig
from ser.models.classifier import EmotionClassifier, TrainingDiverged
from ser.models.optim import build_optimizer
from ser.models.schedules import build_scheduler, cosine_lambda, tristage_lambda

pytestmark = pytest.mark.filterwarnings(
    "ignore:.*(does not have many workers|smaller than the logging|have no `val_dataloader`).*"
)

N_CLASSES, DIM = 3, 8


def mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(DIM, 16), nn.LayerNorm(16), nn.ReLU(), nn.Linear(16, N_CLASSES))


def toy(n_per_class: int = 20, seed: int = 0, separable: bool = True) -> TensorDataset:
    """Class c is a Gaussian blob shifted along axis c; with separable=False labels are random."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(N_CLASSES).repeat_interleave(n_per_class)
    x = 0.3 * torch.randn(len(y), DIM, generator=g) + 2.0 * F.one_hot(y, DIM).float()
    if not separable:
        y = torch.randint(0, N_CLASSES, (len(y),), generator=g)
    return TensorDataset(x, y)


def loader(ds: TensorDataset, batch_size: int = 10, shuffle: bool = False, seed: int = 0) -> DataLoader:
    return DataLoader(
        ds, batch_size=batch_size, shuffle=shuffle, generator=torch.Generator().manual_seed(seed)
    )


def trainer(max_epochs: int = 1, **kw) -> L.Trainer:
    kw.setdefault("logger", False)
    kw.setdefault("num_sanity_val_steps", 0)
    return L.Trainer(
        max_epochs=max_epochs,
        accelerator="cpu",
        devices=1,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        **kw,
    )


def read_csv(logger: CSVLogger) -> list[dict[str, str]]:
    with open(f"{logger.log_dir}/metrics.csv") as fh:
        return list(csv.DictReader(fh))


def test_learns_separable_problem_and_reports_results():
    L.seed_everything(0)
    labels = ["neutral", "happy", "sad"]
    model = EmotionClassifier(mlp(), N_CLASSES, OptimConfig(lr=1e-2), labels=labels)
    t = trainer(max_epochs=8)
    t.fit(model, loader(toy(), shuffle=True), loader(toy(seed=1)))
    val_uar = float(t.callback_metrics["val/uar"])
    assert val_uar > 0.95 and model.val_results["uar"] == pytest.approx(val_uar)
    t.test(model, loader(toy(seed=2)))
    res = model.test_results
    assert res["uar"] > 0.95 and 0 <= res["f1"] <= 1 and res["wa"] > 0.95
    assert set(res["per_class_recall"]) == set(labels)
    assert len(res["confusion"]) == 3 and sum(map(sum, res["confusion"])) == 60
    assert [sum(row) for row in res["confusion"]] == [20, 20, 20]  # rows are the true labels
    probs = torch.cat(t.predict(model, loader(toy(seed=3))))
    assert probs.shape == (60, 3) and torch.allclose(probs.sum(1), torch.ones(60))
    assert (probs.argmax(1) == toy(seed=3).tensors[1]).float().mean() > 0.95


def test_metric_keys_and_plateau_schedule(tmp_path):
    opt = OptimConfig(optimizer="adamw", lr=1e-2, schedule="plateau", plateau_patience=0, l2=1e-3)
    model = EmotionClassifier(mlp(), N_CLASSES, opt)
    t = trainer(max_epochs=2, logger=CSVLogger(tmp_path))
    t.fit(model, loader(toy()), loader(toy(seed=1)))
    expected = {"train/loss", "train/wa", "train/uar", "train/l2_penalty", "lr"}
    expected |= {f"val/{k}" for k in ("loss", "wa", "uar", "f1")}
    assert expected <= set(t.callback_metrics)
    assert not any(k.endswith(("_step", "_epoch")) for k in t.callback_metrics)
    t.test(model, loader(toy(seed=2)))
    assert {f"test/{k}" for k in ("loss", "wa", "uar", "f1")} <= set(t.callback_metrics)
    rows = read_csv(t.logger)
    assert sum(bool(r.get("val/uar")) for r in rows) == 2  # once per epoch, not per step


def test_validation_ignores_the_sanity_check(tmp_path):
    seen = {}

    class AtSanityEnd(L.Callback):
        def on_sanity_check_end(self, trainer, pl_module):
            seen["results"] = dict(pl_module.val_results)
            seen["logged"] = "val/uar" in trainer.callback_metrics

    L.seed_everything(0)
    model = EmotionClassifier(mlp(), N_CLASSES, OptimConfig(lr=0.05))
    t = trainer(max_epochs=3, logger=CSVLogger(tmp_path), num_sanity_val_steps=2, callbacks=[AtSanityEnd()])
    t.fit(model, loader(toy(separable=False), shuffle=True), loader(toy(seed=1, separable=False)))
    assert seen == {"results": {}, "logged": False}
    assert len([r for r in read_csv(t.logger) if r.get("val/uar")]) == 3


def test_ua_averages_over_the_classes_present_in_the_evaluated_data():
    """A label with no examples in the split has no recall and does not pull UA down (an 8-label model
    evaluated on a 7-label corpus)."""
    from ser.report.metrics import metrics_from_confusion

    confusion = [[3, 1, 0], [1, 1, 0], [0, 0, 0]]  # class 2 absent from the data
    m = metrics_from_confusion(confusion, ["a", "b", "c"])
    assert m["uar"] == pytest.approx((0.75 + 0.5) / 2)
    assert m["per_class_recall"] == {"a": 0.75, "b": 0.5, "c": None}
    assert m["wa"] == pytest.approx(4 / 6)


def test_l2_penalty_adds_expected_amount_and_skips_biases():
    net = mlp()
    batch = next(iter(loader(toy())))
    plain = EmotionClassifier(net, N_CLASSES, OptimConfig(l2=0.0))
    with_l2 = EmotionClassifier(net, N_CLASSES, OptimConfig(l2=0.1))
    base, _ = plain.training_objective(batch)
    total, parts = with_l2.training_objective(batch)
    weights = net[0].weight.pow(2).sum() + net[3].weight.pow(2).sum()  # not biases, not LayerNorm
    assert (total - base).item() == pytest.approx(0.1 * weights.item(), rel=1e-5)
    assert parts["l2_penalty"].item() == pytest.approx(0.1 * weights.item(), rel=1e-5)
    # the penalty's gradient reaches the weights: 2 * l2 * w on top of the data gradient
    total.backward()
    g_total = net[3].weight.grad.clone()
    net.zero_grad()
    base, _ = plain.training_objective(batch)
    base.backward()
    torch.testing.assert_close(g_total - net[3].weight.grad, 0.2 * net[3].weight.detach())
    with torch.no_grad():
        net[0].bias.fill_(10.0)
        net[1].weight.fill_(10.0)
    assert with_l2.l2_penalty().item() == pytest.approx(weights.item(), rel=1e-5)


def test_weight_decay_reaches_param_groups():
    for name, cls in (("adam", torch.optim.Adam), ("adamw", torch.optim.AdamW), ("sgd", torch.optim.SGD)):
        cfg = OptimConfig(optimizer=name, weight_decay=0.05, beta1=0.8, beta2=0.95, momentum=0.7)
        model = EmotionClassifier(mlp(), N_CLASSES, cfg)
        opt = model.configure_optimizers()
        assert type(opt) is cls
        decay, no_decay = opt.param_groups
        assert decay["weight_decay"] == 0.05 and no_decay["weight_decay"] == 0.0
        assert {id(p) for p in decay["params"]} == {id(model.net[0].weight), id(model.net[3].weight)}
        assert len(no_decay["params"]) == 4  # two biases, LayerNorm weight and bias
        if name == "sgd":
            assert decay["momentum"] == 0.7 and decay["nesterov"] is False
        else:
            assert decay["betas"] == (0.8, 0.95)


@pytest.mark.parametrize("optimizer", ["adam", "adamw", "sgd"])
@pytest.mark.parametrize("schedule", ["constant", "tristage", "plateau", "cosine"])
def test_each_optimizer_and_schedule_steps(optimizer, schedule):
    cfg = OptimConfig(optimizer=optimizer, schedule=schedule, lr=0.1, plateau_patience=1, final_lr_scale=0.1)
    net = mlp()
    opt = build_optimizer(net, cfg)
    sched = build_scheduler(opt, cfg, total_steps=20)
    x, y = toy().tensors
    before = net[0].weight.detach().clone()
    for _ in range(20):
        opt.zero_grad()
        F.cross_entropy(net(x), y).backward()
        opt.step()
        if sched is None:
            continue
        if sched["interval"] == "epoch":
            sched["scheduler"].step(1.0)  # a flat val/loss: the plateau schedule must cut the lr
        else:
            sched["scheduler"].step()
    assert not torch.equal(before, net[0].weight)
    lr = opt.param_groups[0]["lr"]
    expected = {"constant": 0.1, "tristage": 0.01, "cosine": 0.01}.get(schedule)
    if expected is None:
        assert lr < 0.1 * 0.5**5
    else:
        assert lr == pytest.approx(expected)


def test_tristage_lambda_shape():
    f = [tristage_lambda(s, 100, 0.1, 0.4, 0.01) for s in range(101)]
    assert f[0] == pytest.approx(0.1) and f[9] == 1.0
    assert all(a < b for a, b in zip(f[:9], f[1:10], strict=True))  # warm-up rises
    assert set(f[10:50]) == {1.0}  # hold
    assert f[75] == pytest.approx(0.505) and f[100] == pytest.approx(0.01)  # linear decay
    diffs = [b - a for a, b in zip(f[50:100], f[51:101], strict=True)]
    assert max(diffs) < 0 and max(diffs) - min(diffs) < 1e-9
    assert tristage_lambda(0, 10, 0.0, 0.0, 0.5) == 1.0 and tristage_lambda(500, 10, 0.1, 0.1, 0.5) == 0.5
    assert cosine_lambda(0, 10, 0.1) == 1.0 and cosine_lambda(10, 10, 0.1) == pytest.approx(0.1)


def test_tristage_through_trainer(tmp_path):
    cfg = OptimConfig(lr=0.01, schedule="tristage", warmup_frac=0.2, hold_frac=0.3, final_lr_scale=0.05)
    model = EmotionClassifier(mlp(), N_CLASSES, cfg)
    logger = CSVLogger(tmp_path)
    t = trainer(max_epochs=5, logger=logger, log_every_n_steps=1, limit_val_batches=0)
    t.fit(model, loader(toy(), batch_size=6))  # 10 steps per epoch, 50 in all
    lrs = [float(r["lr"]) for r in read_csv(logger) if r.get("lr")]
    assert len(lrs) == 50
    assert lrs == pytest.approx([0.01 * tristage_lambda(s, 50, 0.2, 0.3, 0.05) for s in range(50)])
    assert lrs[0] < lrs[5] < lrs[9] == pytest.approx(0.01)
    assert max(lrs[10:25]) == min(lrs[10:25]) == pytest.approx(0.01)
    assert lrs[25] > lrs[40] > lrs[49] > 0.01 * 0.05


def test_nan_loss_raises_training_diverged():
    ds = toy()
    ds.tensors[0][3, 0] = float("nan")
    model = EmotionClassifier(mlp(), N_CLASSES, OptimConfig())
    with pytest.raises(TrainingDiverged, match="nan at epoch 0 step 0; lower optim.lr"):
        trainer().fit(model, loader(ds))


class Spy(nn.Module):
    """Identity that records its calls in a shared log."""

    def __init__(self, name: str, log: list[str]):
        super().__init__()
        self.name, self.log = name, log

    def forward(self, x):
        self.log.append(self.name)
        return x


def test_augmentation_only_in_training():
    calls: list[str] = []
    model = EmotionClassifier(
        mlp(),
        N_CLASSES,
        OptimConfig(),
        frontend=Spy("frontend", calls),
        wave_augment=Spy("wave", calls),
        spec_augment=Spy("spec", calls),
    )
    t = trainer(max_epochs=1, num_sanity_val_steps=1)
    t.fit(model, loader(toy()), loader(toy(), batch_size=30))  # 6 train batches, 2 val batches
    assert calls[:1] == ["frontend"]  # sanity check: front end only
    train_calls = calls[1:19]
    assert train_calls == ["wave", "frontend", "spec"] * 6
    assert calls[19:] == ["frontend"] * 2
    calls.clear()
    t.test(model, loader(toy(), batch_size=30))
    t.predict(model, loader(toy(), batch_size=60))
    assert calls == ["frontend"] * 3
    # without a front end, x is features and only spec_augment runs, in training only
    calls.clear()
    model = EmotionClassifier(mlp(), N_CLASSES, OptimConfig(), spec_augment=Spy("spec", calls))
    trainer().fit(model, loader(toy()), loader(toy()))
    assert calls == ["spec"] * 6


def test_seeded_runs_are_identical():
    def run(seed: int) -> tuple[dict, dict]:
        L.seed_everything(seed)
        model = EmotionClassifier(mlp(), N_CLASSES, OptimConfig(lr=5e-3, schedule="cosine"))
        t = trainer(max_epochs=2)
        t.fit(model, loader(toy(), shuffle=True, seed=4), loader(toy(seed=1)))
        fit_metrics = {k: float(v) for k, v in t.callback_metrics.items()}
        t.test(model, loader(toy(seed=2)))
        return fit_metrics, model.test_results

    a = run(123)
    assert a == run(123)
    assert a[0]["val/loss"] != run(124)[0]["val/loss"]  # the seed does reach the initialisation


def test_class_weights_change_the_loss():
    net = mlp()
    x, y = next(iter(loader(toy(), batch_size=60)))
    y = y.clone()
    y[:5] = 1  # unbalanced targets so that weighting matters
    batch = (x, y)
    plain, _ = EmotionClassifier(net, N_CLASSES, OptimConfig()).training_objective(batch)
    w = torch.tensor([1.0, 5.0, 1.0])
    weighted, _ = EmotionClassifier(net, N_CLASSES, OptimConfig(), class_weights=w).training_objective(batch)
    assert weighted.item() != pytest.approx(plain.item())
    assert weighted.item() == pytest.approx(F.cross_entropy(net(x), y, weight=w).item())
    uniform, _ = EmotionClassifier(
        net, N_CLASSES, OptimConfig(), class_weights=torch.full((3,), 2.0)
    ).training_objective(batch)
    assert uniform.item() == pytest.approx(plain.item())  # a weighted mean: only ratios matter


def test_label_smoothing_applies_to_training_loss_only():
    net = mlp()
    batch = next(iter(loader(toy())))
    model = EmotionClassifier(net, N_CLASSES, OptimConfig(label_smoothing=0.2))
    loss, _ = model.training_objective(batch)
    assert loss.item() == pytest.approx(F.cross_entropy(net(batch[0]), batch[1], label_smoothing=0.2).item())
    assert model.data_loss(net(batch[0]), batch[1]).item() == pytest.approx(
        F.cross_entropy(net(batch[0]), batch[1]).item()
    )


def test_invalid_arguments():
    with pytest.raises(ValueError, match="unknown optim key"):
        EmotionClassifier(mlp(), 3, {"lr": 1e-3, "lrate": 1})
    with pytest.raises(ValueError, match="optim.optimizer"):
        EmotionClassifier(mlp(), 3, {"optimizer": "rmsprop"})
    with pytest.raises(ValueError, match="2 labels"):
        EmotionClassifier(mlp(), 3, OptimConfig(), labels=["a", "b"])
    with pytest.raises(ValueError, match="class_weights"):
        EmotionClassifier(mlp(), 3, OptimConfig(), class_weights=torch.ones(2))
    with pytest.raises(ValueError, match="warmup_frac"):
        EmotionClassifier(mlp(), 3, OptimConfig(schedule="tristage", warmup_frac=0.7, hold_frac=0.5))
    model = EmotionClassifier(mlp(), 3, {"lr": 0.5, "schedule": "cosine"})
    assert model.hparams["optim"]["lr"] == 0.5 and model.hparams["labels"] == ["0", "1", "2"]


def test_mixup_loss_mixes_both_labels_in_training_only():
    from ser.data.augment import Mixup

    net = mlp()
    x, y = next(iter(loader(toy(), batch_size=60, shuffle=True)))
    model = EmotionClassifier(
        net, N_CLASSES, OptimConfig(), mixup=Mixup(0.4, generator=torch.Generator().manual_seed(1))
    ).train()
    loss, parts = model.training_objective((x, y))
    mixed, partner, lam = Mixup(0.4, generator=torch.Generator().manual_seed(1)).train()(x, y)
    assert 0.5 <= lam < 1.0 and not torch.equal(partner, y)
    logits = net(mixed)
    expected = lam * F.cross_entropy(logits, y) + (1 - lam) * F.cross_entropy(logits, partner)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert torch.equal(parts["y"], y)  # train metrics count the dominant label
    model.eval()
    plain, _ = model.training_objective((x, y))
    assert plain.item() == pytest.approx(F.cross_entropy(net(x), y).item())
