"""The LightningDataModule: uint8 splits in memory, served as index-sliced batches."""

from __future__ import annotations

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler, SequentialSampler

from fer.augment import build_augmentation
from fer.data.split import Split
from fer.data.splits import Splits


class BatchSlices(Dataset):
    """Indexed by a whole list of row indices at once, so a batch is one tensor slice, not N samples.

    FER2013 fits in memory many times over; per-sample __getitem__ and collation would dominate.
    """

    def __init__(self, split: Split):
        self.images = torch.from_numpy(np.ascontiguousarray(split.images)).unsqueeze(1)  # (N,1,48,48) uint8
        self.labels = torch.from_numpy(split.labels.astype(np.int64))

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index):
        index = torch.as_tensor(index)
        return self.images[index], self.labels[index]


class FERDataModule(pl.LightningDataModule):
    """Serves the splits; after transfer to the device, scales to [0, 1] and augments training batches.

    Augmentation runs batched with per-sample parameters (kornia) on the device that holds the batch.
    Normalization is the model's job (`fer.norm.Normalizer`), so checkpoints carry its statistics.
    """

    def __init__(self, splits: Splits, data_cfg, aug_cfg):
        super().__init__()
        self.splits = splits
        self.batch_size = data_cfg.batch_size
        self.num_workers = data_cfg.num_workers
        self.augment = build_augmentation(aug_cfg)

    @property
    def test_names(self) -> list[str]:
        return list(self.splits.tests)

    def _loader(self, split: Split, shuffle: bool) -> DataLoader:
        ds = BatchSlices(split)
        order = RandomSampler(ds) if shuffle else SequentialSampler(ds)
        return DataLoader(
            ds,
            sampler=BatchSampler(order, self.batch_size, drop_last=False),
            batch_size=None,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self):
        return self._loader(self.splits.train, shuffle=True)

    def val_dataloader(self):
        return self._loader(self.splits.val, shuffle=False)

    def test_dataloader(self):
        return [self._loader(s, shuffle=False) for s in self.splits.tests.values()]

    def predict_dataloader(self):
        split = self.splits.predict if self.splits.predict is not None else self.splits.val
        return self._loader(split, shuffle=False)

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        x, y = batch
        x = x.float().div_(255.0)
        if self.trainer is not None and self.trainer.training:
            x = self.augment(x)
        return x, y
