"""The batch a step receives, named once: images, labels and, where the data has them (FER+), label distributions.

A NamedTuple, so Lightning moves it to the device as it moves any tuple (`transfer_batch_to_device` rebuilds
namedtuples field by field) and a DataLoader passes it through unchanged.
"""

from __future__ import annotations

from typing import NamedTuple

import torch


class Batch(NamedTuple):
    """`images` (B, 1, H, W): uint8 as the data module slices them, floats in [0, 1] once on the device;
    `labels` int64 (B,); `targets` float (B, classes), FER+ only (else None): what training fits by
    `data.label_mode` on the training split, the annotators' vote shares on the others (any-vote accuracy)."""

    images: torch.Tensor
    labels: torch.Tensor
    targets: torch.Tensor | None = None
