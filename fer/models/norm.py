"""Input normalization (`norm=`), a layer of the model so that a checkpoint carries its statistics."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from fer.registry import Registry

# (shift, scale) applied to images in [0, 1]; None: fitted to the training split
NORMS = Registry("norm.name", {"none": (0.0, 1 / 255), "unit": (0.0, 1.0), "symmetric": (0.5, 0.5),
                               "standardize": None})


class Normalizer(nn.Module):
    """Maps images in [0, 1] to the model's input scale: y = (x - shift) / scale.

    none → 0–255, unit → [0, 1], symmetric → [-1, 1], standardize → zero mean and unit variance
    with the training split's statistics (`fit`), which live in buffers and so in the checkpoint.
    """

    def __init__(self, name: str):
        super().__init__()
        self.name = name
        shift, scale = NORMS.get(name) or (0.0, 1.0)
        self.register_buffer("shift", torch.tensor(shift))
        self.register_buffer("scale", torch.tensor(scale))

    @property
    def fitted(self) -> bool:
        return NORMS.get(self.name) is None

    def fit(self, train_images: np.ndarray) -> dict[str, float]:
        """Take mean and std from the training images (uint8) when fitted; returns what to log."""
        if not self.fitted:
            return {}
        x = train_images.astype(np.float64) / 255.0
        mean, std = float(x.mean()), float(x.std())
        self.shift.fill_(mean)
        self.scale.fill_(max(std, 1e-6))
        return {"norm.mean": mean, "norm.std": std}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.shift) / self.scale
