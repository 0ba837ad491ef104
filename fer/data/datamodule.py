"""The LightningDataModule: uint8 splits in memory (or on the GPU), served as index-sliced batches."""

from __future__ import annotations

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.overrides.distributed import UnrepeatedDistributedSampler
from torch.utils.data import BatchSampler, DataLoader, Dataset, DistributedSampler, RandomSampler, SequentialSampler

from fer.data.augment import build_augmentation
from fer.data.batch import Batch
from fer.data.splits import Split, Splits


class BatchSlices(Dataset):
    """Indexed by a whole list of row indices at once, so a batch is one tensor slice, not N samples.

    FER2013 fits in memory many times over; per-sample __getitem__ and collation would dominate.
    A batch is a `Batch`: images, labels, and the label distributions where the split has some (FER+).
    """

    def __init__(self, split: Split, device: torch.device | None = None):
        self.images = torch.from_numpy(np.ascontiguousarray(split.images)).unsqueeze(1).to(device)  # (N,1,48,48)
        self.labels = torch.from_numpy(split.labels.astype(np.int64)).to(device)
        self.targets = None if split.targets is None else torch.from_numpy(split.targets).to(device)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index) -> Batch:
        index = torch.as_tensor(index)
        if self.images.is_cuda:  # from pinned memory the copy is queued; from pageable memory it waits for the GPU
            index = index.pin_memory().to(self.images.device, non_blocking=True)
        return Batch(self.images[index], self.labels[index], None if self.targets is None else self.targets[index])


class EpochBatchSampler(BatchSampler):
    """A BatchSampler that passes Lightning's per-epoch `set_epoch` on to its (distributed) sampler, so each
    epoch shuffles anew under DDP: Lightning looks for it on the loader's `sampler`, which this is."""

    def set_epoch(self, epoch: int) -> None:
        if hasattr(self.sampler, "set_epoch"):
            self.sampler.set_epoch(epoch)


class FERDataModule(pl.LightningDataModule):
    """Serves the splits; after transfer to the device, scales to [0, 1] and augments training batches.

    With `data.on_device` (default on a GPU) the uint8 splits are copied to the trainer's device once, in
    `setup`, and every batch is an index slice there: nothing crosses the bus per step, and no worker is needed.
    Augmentation runs batched with per-sample parameters on the device that holds the batch.
    Normalization is the model's job (`fer.norm.Normalizer`), so checkpoints carry its statistics.
    For a model that asks for one batch shape (`fixed_batch_shape`: a compiled one), training batches are all
    full: the last partial one is dropped, a different one each epoch.
    Under DDP each rank reads its own share of the rows (the Trainer is told not to swap samplers, which would
    undo the batch slicing): training shares are padded to equal length, evaluation shares are not, so each
    validation and test row is counted exactly once.
    """

    def __init__(self, splits: Splits, data_cfg, aug_cfg):
        super().__init__()
        self.splits = splits
        self.batch_size = data_cfg.batch_size
        self.num_workers = data_cfg.num_workers
        self.on_device = data_cfg.get("on_device")
        self.augment = build_augmentation(aug_cfg)
        self.device: torch.device | None = None  # where the splits live; None: CPU memory
        self._datasets: dict[int, tuple[Split, BatchSlices]] = {}  # by id(split), the split held so ids stay unique

    def setup(self, stage: str) -> None:
        root = self.trainer.strategy.root_device if self.trainer is not None else torch.device("cpu")
        on_device = self.on_device if self.on_device is not None else root.type != "cpu"
        device = root if on_device else None
        if device != self.device:
            self.device, self._datasets = device, {}

    def dataset(self, split: Split) -> BatchSlices:
        """The split as tensors (on `self.device` when the splits live there), made once per split."""
        if id(split) not in self._datasets:
            self._datasets[id(split)] = (split, BatchSlices(split, self.device))
        return self._datasets[id(split)][1]

    def full_batches_only(self) -> bool:
        module = self.trainer.lightning_module if self.trainer is not None else None
        return bool(getattr(module, "fixed_batch_shape", False))

    @property
    def test_names(self) -> list[str]:
        return list(self.splits.tests)

    def order(self, ds: BatchSlices, shuffle: bool):
        """The row order: this rank's share under DDP, otherwise all rows (shuffled for training)."""
        ranks = self.trainer.world_size if self.trainer is not None else 1
        if ranks == 1:
            return RandomSampler(ds) if shuffle else SequentialSampler(ds)
        share = DistributedSampler if shuffle else UnrepeatedDistributedSampler
        return share(ds, num_replicas=ranks, rank=self.trainer.global_rank, shuffle=shuffle,
                     seed=torch.initial_seed() % 2**31)

    def _loader(self, split: Split, shuffle: bool) -> DataLoader:
        ds = self.dataset(split)
        order = self.order(ds, shuffle)
        workers = self.num_workers if self.device is None else 0  # a device slice needs no worker (nor can one)
        return DataLoader(
            ds,
            sampler=EpochBatchSampler(order, self.batch_size,
                                      drop_last=shuffle and len(ds) >= self.batch_size
                                      and self.full_batches_only()),
            batch_size=None,
            num_workers=workers,
            persistent_workers=workers > 0,
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

    def on_after_batch_transfer(self, batch: Batch, dataloader_idx: int) -> Batch:
        x = batch.images.float().div_(255.0)
        if self.trainer is not None and self.trainer.training:
            x = self.augment(x)
        return batch._replace(images=x)
