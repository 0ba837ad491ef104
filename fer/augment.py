"""Batched augmentation (`aug=`) with per-sample random parameters, on whatever device holds the batch."""

from __future__ import annotations

import kornia.augmentation as K
from torch import nn


def build_augmentation(cfg) -> nn.Module:
    """kornia transforms for images in [0, 1], shape (B, 1, 48, 48); identity for `aug=none`."""
    ops: list[nn.Module] = []
    if cfg.crop_padding:
        ops.append(K.RandomCrop((48, 48), padding=cfg.crop_padding, padding_mode="reflect"))
    if cfg.hflip:
        ops.append(K.RandomHorizontalFlip())
    if cfg.rotation or cfg.shift or cfg.shear or cfg.zoom:
        ops.append(
            K.RandomAffine(
                degrees=cfg.rotation,
                translate=(cfg.shift, cfg.shift) if cfg.shift else None,
                scale=(1 - cfg.zoom, 1 + cfg.zoom) if cfg.zoom else None,
                shear=cfg.shear or None,
                padding_mode="border",  # Keras's fill_mode="nearest"
                p=1.0,
            )
        )
    if cfg.erasing:
        ops.append(K.RandomErasing(p=cfg.erasing, scale=(0.02, 0.25), value=0.0))
    return K.AugmentationSequential(*ops, data_keys=["input"]) if ops else nn.Identity()
