"""The conventional input pipeline, kept as `fer.bench`'s baseline: one PIL image at a time in DataLoader workers.

torchvision is not installable beside this torch, so its per-sample transforms are written here with PIL
and numpy: random crop from a reflect-padded image, horizontal flip, one random affine (rotation, shift,
shear, zoom) resampled bilinearly, and random erasing — the `aug` options, applied the way a
`torchvision.transforms.Compose` in a Dataset's `__getitem__` applies them.
"""

from __future__ import annotations

import math
import os

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset, default_collate

from fer.data.augment import ERASE_RATIO, ERASE_SCALE, has_affine, smaller_crop
from fer.data.batch import Batch


class PerSampleDataset(Dataset):
    """(image, label) per index: a float (1, 48, 48) tensor in [0, 1], augmented on the CPU."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, aug_cfg):
        self.images, self.labels, self.cfg = images, labels, aug_cfg
        self._rng: tuple[int, np.random.Generator] | None = None

    def rng(self) -> np.random.Generator:
        """One generator per process, seeded from torch's per-worker seed, as torchvision's transforms draw."""
        if self._rng is None or self._rng[0] != os.getpid():
            self._rng = (os.getpid(), np.random.default_rng(torch.initial_seed()))
        return self._rng[1]

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        rng = self.rng()
        cfg, img = self.cfg, self.images[i]
        if cfg.crop_padding:
            p = cfg.crop_padding
            padded = np.pad(img, p, mode="reflect")
            top, left = rng.integers(0, 2 * p + 1, size=2)
            img = padded[top:top + img.shape[0], left:left + img.shape[1]]
        pil = Image.fromarray(np.ascontiguousarray(img))
        if cfg.hflip and rng.random() < 0.5:
            pil = pil.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        if has_affine(cfg):
            pil = pil.transform(pil.size, Image.Transform.AFFINE, affine_coefficients(cfg, rng, pil.size[0]),
                                resample=Image.Resampling.BILINEAR)
        x = np.asarray(pil, dtype=np.float32) / 255.0
        if crop := smaller_crop(cfg):
            top, left = rng.integers(0, x.shape[0] - crop + 1, size=2)
            x = x[top:top + crop, left:left + crop]
        if cfg.erasing and rng.random() < cfg.erasing:
            x = erase(x, rng)
        return torch.from_numpy(x).unsqueeze(0), int(self.labels[i])


def collate(samples: list) -> Batch:
    """The samples stacked as torch's default collation stacks them, as the `Batch` fer's steps take."""
    return Batch(*default_collate(samples))


def affine_coefficients(cfg, rng: np.random.Generator, size: int) -> tuple[float, ...]:
    """PIL's AFFINE data: the output→input map (a, b, c, d, e, f) of a random affine about the center."""
    angle = math.radians(rng.uniform(-cfg.rotation, cfg.rotation))
    shear = math.tan(math.radians(rng.uniform(-cfg.shear, cfg.shear)))
    scale = rng.uniform(1 - cfg.zoom, 1 + cfg.zoom)
    tx, ty = rng.uniform(-cfg.shift, cfg.shift, size=2) * size
    cos, sin = math.cos(angle) * scale, math.sin(angle) * scale
    fwd = np.array([[cos, cos * shear - sin], [sin, sin * shear + cos]])
    inv = np.linalg.inv(fwd)
    center = np.array([size / 2, size / 2])
    offset = center - inv @ (center + np.array([tx, ty]))
    return (inv[0, 0], inv[0, 1], offset[0], inv[1, 0], inv[1, 1], offset[1])


def erase(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    h, w = x.shape
    area = rng.uniform(*ERASE_SCALE) * h * w
    ratio = math.exp(rng.uniform(math.log(ERASE_RATIO[0]), math.log(ERASE_RATIO[1])))
    eh = int(min(h, max(1, round(math.sqrt(area * ratio)))))
    ew = int(min(w, max(1, round(math.sqrt(area / ratio)))))
    top, left = rng.integers(0, h - eh + 1), rng.integers(0, w - ew + 1)
    x = x.copy()
    x[top:top + eh, left:left + ew] = 0.0
    return x
