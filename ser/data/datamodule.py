"""One speaker fold's batches from `PreparedData`, with augmentation on the training split only.

`ser.data.prepared.prepare_data` does the expensive, fold-independent work once (scan corpora, decode
audio, compute features through the on-disk cache); every fold of a run and every trial of a sweep reuses
its `PreparedData`. `SERDataModule` then only slices rows for its fold. Batches of the default path are
index slices into tensors already on the training device (no per-item Python work, no workers); only
when the fold is larger than `data.device_max_mb` does it fall back to ordinary DataLoaders.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import Any

import lightning as L
import numpy as np
import torch
from omegaconf import DictConfig
from torch.utils.data import DataLoader, TensorDataset, WeightedRandomSampler

from ser.config import ConfigError
from ser.data.folds import Fold, split_utterances
from ser.data.prepared import PreparedData
from ser.data.types import CorpusError


def balanced_weights(y: np.ndarray, n_classes: int) -> torch.Tensor:
    """Per-item sampling weights 1 / count(item's class): every class present is drawn equally often."""
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    return torch.from_numpy(1.0 / counts[y])


class TensorBatches:
    """Shuffled index-slice batches over tensors that already live on the training device.

    With `weights` (data.sampler=balanced) an epoch is len(y) items drawn with replacement in proportion
    to the weights, from the same generator, so a seeded run stays reproducible and resumable.

    With `rows`, `x` is the whole shared array and `rows` the split's row numbers in it (`y` is the split's
    labels): batches are gathered straight from the shared array, so a split costs no copy of the data.
    """

    def __init__(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        batch_size: int,
        shuffle: bool,
        seed: int = 0,
        rows: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        weights: torch.Tensor | None = None,
    ) -> None:
        if rows is not None and len(rows) != len(y):
            raise ValueError(f"{len(rows)} row numbers for {len(y)} labels")
        if weights is not None and len(weights) != len(y):
            raise ValueError(f"{len(weights)} sampling weights for {len(y)} labels")
        self.x, self.y, self.batch_size, self.shuffle, self.rows = x, y, batch_size, shuffle, rows
        self.weights = None if weights is None else weights.detach().to("cpu", torch.float64)
        self.generator = (
            generator if generator is not None else torch.Generator(device="cpu").manual_seed(seed)
        )

    def __len__(self) -> int:
        full, rest = divmod(len(self.y), self.batch_size)
        return full + int(rest > 1 or (rest == 1 and not self.shuffle))

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = len(self.y)
        if self.shuffle and self.weights is not None:  # class-balanced: n draws with replacement
            order = torch.multinomial(self.weights, n, replacement=True, generator=self.generator)
        elif self.shuffle:
            order = torch.randperm(n, generator=self.generator)
        else:
            order = torch.arange(n)
        order = order.to(self.y.device)
        for start in range(0, n, self.batch_size):
            idx = order[start : start + self.batch_size]
            if self.shuffle and len(idx) == 1:
                break  # a training batch of one breaks BatchNorm; the item is drawn again next epoch
            # index_select, not x[idx]: advanced indexing ran as a 2-thread OpenMP op that stalled
            # ~20 ms per step on a loaded CPU (bench/pipeline.py)
            x_idx = idx if self.rows is None else self.rows.index_select(0, idx)
            yield self.x.index_select(0, x_idx), self.y.index_select(0, idx)


class SERDataModule(L.LightningDataModule):
    """One speaker fold of prepared data: train (augmented by the model), val and test loaders."""

    def __init__(
        self, cfg: DictConfig, prepared: PreparedData, fold_index: int, fold: Fold | None = None
    ) -> None:
        """`fold` overrides `prepared.folds[fold_index]` (the final held-out split is not a CV fold)."""
        super().__init__()
        if fold is None and not 0 <= fold_index < len(prepared.folds):
            raise ConfigError(
                f"invalid config key 'data.fold': {fold_index} is out of range 0..{len(prepared.folds) - 1}"
            )
        self.cfg = cfg
        self.prepared = prepared
        self.fold: Fold = fold if fold is not None else prepared.folds[fold_index]
        self.fold_index = fold_index
        self.train_idx, self.val_idx, self.test_idx = split_utterances(
            prepared.speakers, self.fold, prepared.y, seed=cfg.data.fold_seed
        )
        for name, idx in (("train", self.train_idx), ("val", self.val_idx), ("test", self.test_idx)):
            if len(idx) == 0 and not (name == "test" and not self.fold.test):  # held-out CV: no test split
                raise CorpusError(f"fold {fold_index} has an empty {name} split (speakers: {self.fold})")
        self._tensors: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}  # split copies (GPU, DataLoaders)
        self._all_x: torch.Tensor | None = None  # the shared array itself (CPU-resident batches)
        # the training order's generator, and its saved state when resuming (checkpoints carry it)
        self._shuffle: torch.Generator | None = None
        self._shuffle_state: torch.Tensor | None = None
        # where resident batches live when no Lightning trainer drives this module (ser.training.fused)
        self.batch_device: torch.device | None = None

    # -------------------------------------------------------------------------------- properties
    @property
    def labels(self) -> list[str]:
        return self.prepared.labels

    @property
    def n_classes(self) -> int:
        return self.prepared.n_classes

    @property
    def row_shape(self) -> tuple[int, ...]:
        """Shape of one row as stored: features, vector or waveform."""
        return tuple(self.prepared.x.shape[1:])

    def class_weights(self) -> torch.Tensor:
        """Inverse-frequency weights from the TRAIN split (mean 1), for imbalanced corpora."""
        counts = np.bincount(self.prepared.y[self.train_idx], minlength=self.n_classes).astype(np.float64)
        weights = np.where(counts > 0, counts.sum() / np.maximum(counts, 1) / self.n_classes, 0.0)
        return torch.tensor(weights, dtype=torch.float32)

    def split_sizes(self) -> dict[str, int]:
        return {"train": len(self.train_idx), "val": len(self.val_idx), "test": len(self.test_idx)}

    @property
    def has_test(self) -> bool:
        return len(self.test_idx) > 0

    def split_speakers(self) -> dict[str, list[str]]:
        speakers = {"train": list(self.fold.train), "val": list(self.fold.val), "test": list(self.fold.test)}
        if self.fold.held_out:
            speakers["held_out"] = list(self.fold.held_out)
        return speakers

    def train_rows(self) -> torch.Tensor:
        """The training rows, for fitting train-only statistics."""
        return torch.from_numpy(np.asarray(self.prepared.x[np.sort(self.train_idx)], dtype=np.float32))

    # ------------------------------------------------------------------------------------ loaders
    def _device(self) -> torch.device:
        if self.batch_device is not None:
            return self.batch_device
        trainer = getattr(self, "trainer", None)
        if trainer is not None:
            return trainer.strategy.root_device
        return torch.device("cpu")

    def _dtype(self) -> np.dtype:
        """float32 rows, except float16 encoder states, which stay half the bytes (the head upcasts)."""
        return np.dtype(np.float16) if self.prepared.x.dtype == np.float16 else np.dtype(np.float32)

    def split_tensors(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        if name not in self._tensors:
            idx = self._rows(name)
            x = torch.from_numpy(np.asarray(self.prepared.x[idx], dtype=self._dtype()))
            y = torch.from_numpy(self.prepared.y[idx])
            self._tensors[name] = (x, y)
        return self._tensors[name]

    def _shared_x(self) -> torch.Tensor:
        """The whole prepared array as a tensor without copying it (it may be read-only: never written)."""
        if self._all_x is None:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
                self._all_x = torch.from_numpy(np.asarray(self.prepared.x, dtype=self._dtype()))
        return self._all_x

    def _resident_fits(self) -> bool:
        if not self.cfg.data.device_resident:
            return False
        row_bytes = int(np.prod(self.row_shape)) * self._dtype().itemsize
        total_mb = row_bytes * len(self.prepared.y) / 2**20
        return total_mb <= float(self.cfg.data.device_max_mb)

    def _rows(self, name: str) -> np.ndarray:
        """The split's row numbers in the prepared array, in order."""
        return np.sort({"train": self.train_idx, "val": self.val_idx, "test": self.test_idx}[name])

    def _generator(self, shuffle: bool) -> torch.Generator:
        generator = torch.Generator(device="cpu").manual_seed(int(self.cfg.trainer.seed) + self.fold_index)
        if shuffle:
            if self._shuffle_state is not None:
                generator.set_state(self._shuffle_state)
            self._shuffle = generator
        return generator

    def state_dict(self) -> dict[str, Any]:
        """Saved in every checkpoint: where the training order's generator stands."""
        return {} if self._shuffle is None else {"shuffle": self._shuffle.get_state()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._shuffle_state = state_dict.get("shuffle")

    def _sampling_weights(self, name: str, shuffle: bool) -> torch.Tensor | None:
        """Class-balanced weights of the split's rows (in `_rows` order) when data.sampler=balanced."""
        if not shuffle or self.cfg.data.get("sampler", "shuffle") != "balanced":
            return None
        return balanced_weights(self.prepared.y[self._rows(name)], self.n_classes)

    def _loader(self, name: str, shuffle: bool):
        batch_size = int(self.cfg.data.batch_size)
        generator = self._generator(shuffle)
        weights = self._sampling_weights(name, shuffle)
        if self._resident_fits():
            device = self._device()
            if device.type == "cpu":  # gather batches from the shared array itself: no per-split copy
                rows = torch.from_numpy(self._rows(name).astype(np.int64))
                y = torch.from_numpy(self.prepared.y[rows.numpy()])
                return TensorBatches(
                    self._shared_x(), y, batch_size, shuffle, generator=generator, rows=rows, weights=weights
                )
            x, y = self.split_tensors(name)
            return TensorBatches(
                x.to(device), y.to(device), batch_size, shuffle, generator=generator, weights=weights
            )
        x, y = self.split_tensors(name)
        sampler = None
        if weights is not None:
            sampler = WeightedRandomSampler(weights, len(y), replacement=True, generator=generator)
        return DataLoader(
            TensorDataset(x, y),
            batch_size=batch_size,
            shuffle=shuffle and sampler is None,
            sampler=sampler,
            drop_last=shuffle and len(y) % batch_size == 1,
            generator=generator if sampler is None else None,
            num_workers=int(self.cfg.data.num_workers),
            pin_memory=torch.cuda.is_available(),
        )

    def train_dataloader(self):
        return self._loader("train", shuffle=True)

    def val_dataloader(self):
        return self._loader("val", shuffle=False)

    def test_dataloader(self):
        return self._loader("test", shuffle=False)

    def transfer_batch_to_device(self, batch, device, dataloader_idx):  # noqa: D102
        if isinstance(batch, (tuple, list)) and all(t.device == device for t in batch):
            return batch  # already resident: skip Lightning's recursive move
        return super().transfer_batch_to_device(batch, device, dataloader_idx)
