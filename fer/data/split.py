"""The in-memory form every reader produces: uint8 48×48 images with their labels."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

UNLABELED = -1


@dataclass(frozen=True)
class Split:
    """One split of a data set.

    `rows` are the 1-based source line or row numbers, kept so errors and skipped-row logs can
    point back into the user's file; `ids` are the ids a Kaggle-style prediction file needs;
    `masks` (synthetic data only) mark the regions that decide each image's class.
    """

    images: np.ndarray  # uint8 (N, 48, 48)
    labels: np.ndarray  # int64 (N,), UNLABELED where the source has no label
    rows: np.ndarray | None = None
    ids: np.ndarray | None = None
    masks: np.ndarray | None = None

    def __post_init__(self):
        n = len(self.images)
        assert self.images.dtype == np.uint8 and self.images.shape[1:] == (48, 48), self.images.shape
        assert self.labels.shape == (n,), (self.labels.shape, n)
        for extra in (self.rows, self.ids, self.masks):
            assert extra is None or len(extra) == n

    def __len__(self) -> int:
        return len(self.images)

    @property
    def labeled(self) -> bool:
        return bool(len(self)) and bool((self.labels != UNLABELED).all())

    def take(self, index: np.ndarray) -> Split:
        """The rows at `index`, every per-row array kept aligned."""
        pick = lambda a: None if a is None else a[index]  # noqa: E731
        return Split(self.images[index], self.labels[index], pick(self.rows), pick(self.ids), pick(self.masks))
