"""The Python face of `ser`, for notebooks and scripts: the same pieces the CLI uses, one call each.

    import ser
    cfg = ser.load_config("ravdess_cnn", {"data.root": "/data/ravdess"})  # presets, files, dicts, overrides
    result = ser.fit(cfg)                        # = `ser fit`: run directory, FoldResults, metrics.json
    dm = ser.datamodule(cfg, fold=0)             # a ready LightningDataModule of one speaker fold
    model = ser.build_model(cfg, dm, net=None)   # the LightningModule; `net` swaps in your nn.Module
    L.Trainer(max_epochs=5).fit(model, dm)       # your own Trainer, callbacks and loggers
    board = ser.sweep("sweeps/quickstart.yaml", **{"sweep.num_samples": 2})  # the leaderboard, a DataFrame

Every function takes a config as `ser.load_config` returns it, or anything `load_config` accepts (a
preset name, a YAML path, a mapping), and does what the matching command does: `fit` is `ser fit`'s fold
trainer and result type, `sweep` is `ser sweep`. This module imports no torch until a function needs it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

from omegaconf import DictConfig

if TYPE_CHECKING:  # the heavy types, for annotations only
    import pandas
    from lightning.pytorch.callbacks import Callback

    from ser.data.datamodule import SERDataModule
    from ser.models.classifier import EmotionClassifier
    from ser.models.pipeline import NetSource
    from ser.training.fit import RunResult

__all__ = ["build_model", "datamodule", "fit", "load_config", "sweep"]

ConfigLike = Union[DictConfig, str, Path, Mapping[str, Any]]


def load_config(*configs: str | Path | Mapping[str, Any], overrides: Sequence[str] = ()) -> DictConfig:
    """The validated config, as `ser fit --config A --config B key=value` builds it.

    Each of `configs` is a preset name (`"ravdess"`, `"model/sentan"`), a YAML file, or a mapping of
    differences (nested, or with dotted keys: `{"model.depth": 2}`); later ones win, `overrides`
    (`["optim.lr=1e-3"]`) last. A typo'd key or a bad value raises `ser.config.ConfigError` naming it.
    """
    from ser.config import load_config as _load

    return _load(list(configs), list(overrides))


def _config(cfg: ConfigLike) -> DictConfig:
    return cfg if isinstance(cfg, DictConfig) else load_config(cfg)


def fit(
    cfg: ConfigLike,
    callbacks: Sequence[Callback] | Callable[[int], Sequence[Callback]] = (),
    progress: bool | None = None,
) -> RunResult:
    """Train the config's folds (`data.fold`: one, a list, or `all`) exactly as `ser fit` does, and return
    its `RunResult`: `.run_dir` (config.yaml, metrics.json, plots, checkpoints), `.folds` (one
    `FoldResult` per fold: speakers, sizes, selection, test metrics, history) and `.metrics` (what
    metrics.json holds, with the mean ± sd over folds).

    `callbacks`: extra Lightning callbacks for every fold's Trainer, or a function of the fold index that
    returns them (a fresh set per fold). `progress`: override `trainer.progress_bar`.
    """
    from ser.training.fit import fit_folds

    cfg = _config(cfg)
    if progress is not None:
        cfg = cfg.copy()
        cfg.trainer.progress_bar = bool(progress)
    per_fold = None
    if callable(callbacks):
        per_fold = callbacks
    elif callbacks:
        extra = list(callbacks)
        per_fold = lambda _fold: extra  # noqa: E731
    return fit_folds(cfg, callbacks_for_fold=per_fold)


def datamodule(cfg: ConfigLike, fold: int = 0, progress: bool | None = None) -> SERDataModule:
    """A ready `SERDataModule` (a LightningDataModule) of speaker fold `fold`: the corpus scanned,
    decoded and featurised through the on-disk cache, the folds computed (no speaker in two splits).

    `dm.prepared` holds the whole corpus (`x`, `y`, `labels`, `speakers`, `folds`);
    `dm.split_speakers()` and `dm.split_sizes()` say what the fold holds; `dm.train_dataloader()` and
    friends yield `(x, y)` batches.
    """
    from ser.data.datamodule import SERDataModule
    from ser.data.prepared import prepare_data

    cfg = _config(cfg)
    show = bool(cfg.trainer.progress_bar) if progress is None else progress
    return SERDataModule(cfg, prepare_data(cfg, progress=show), int(fold))


def build_model(cfg: ConfigLike, dm: SERDataModule, net: NetSource | None = None) -> EmotionClassifier:
    """The `EmotionClassifier` LightningModule of `dm`'s fold, for `L.Trainer(...).fit(model, dm)`.

    It owns what every ser model shares (feature front end, normalisation, train-only augmentation, loss,
    optimizer and schedule from `optim.*`, metrics logged as `train/*`, `val/uar`, `test/uar`, ...; after
    `trainer.test`, `model.test_results`). The network is `model.name`'s from the registry, or `net`: your
    own `torch.nn.Module` taking a batch of features `[B, *feature_shape]` to logits `[B, n_classes]`, or
    a function `(feature_shape, n_classes) -> nn.Module`. Initial weights are drawn from the fold's seed
    (`trainer.seed + fold`), as in `ser fit`.

    With the registry's network, checkpoints your Trainer saves are ser checkpoints (`ser predict`,
    `ser evaluate` and `ser report` read them); a network of your own is yours to rebuild.
    """
    from ser.training.parts import build_fold_model, checkpoint_info

    cfg = _config(cfg)
    model, feature_shape = build_fold_model(cfg, dm.prepared, dm, net=net)
    if net is None:
        model.pipeline_info = checkpoint_info(cfg, dm.prepared, dm, feature_shape)
    return model


def sweep(
    path_or_spec: str | Path | Mapping[str, Any],
    *,
    wandb: bool | None = None,
    resume: bool = False,
    show_test: bool = False,
    **overrides: Any,
) -> pandas.DataFrame:
    """Run a sweep as `ser sweep FILE key=value ...` does and return its leaderboard as a pandas
    DataFrame (ser.sweep.frame.sweep_frame, which documents the arguments); also `ser.sweep(...)`."""
    from ser.sweep.frame import sweep_frame

    return sweep_frame(path_or_spec, wandb=wandb, resume=resume, show_test=show_test, **overrides)
