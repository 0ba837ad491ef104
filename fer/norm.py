"""Input normalization (`norm=`), kept inside the model so a checkpoint carries its statistics."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


class Normalizer(nn.Module):
    """Maps images in [0, 1] to the model's input scale: y = (x - shift) / scale.

    none → 0–255, unit → [0, 1], symmetric → [-1, 1], standardize → zero mean and unit variance
    with the training split's statistics (`fit`), which live in buffers and so in the checkpoint.
    """

    FIXED = {"none": (0.0, 1 / 255), "unit": (0.0, 1.0), "symmetric": (0.5, 0.5)}

    def __init__(self, name: str):
        super().__init__()
        self.name = name
        shift, scale = self.FIXED.get(name, (0.0, 1.0))
        self.register_buffer("shift", torch.tensor(shift))
        self.register_buffer("scale", torch.tensor(scale))

    def fit(self, train_images: np.ndarray) -> dict[str, float]:
        """Take mean and std from the training images (uint8) for `standardize`; returns what to log."""
        if self.name != "standardize":
            return {}
        x = train_images.astype(np.float64) / 255.0
        mean, std = float(x.mean()), float(x.std())
        self.shift.fill_(mean)
        self.scale.fill_(max(std, 1e-6))
        return {"norm.mean": mean, "norm.std": std}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.shift) / self.scale
