"""The tested model as others run it: raw 0–255 faces in, the class probabilities out, as one torch.export graph.

A user of the MLflow Model (pyfunc, `mlflow models serve`, another language) has pixels, not fer's
normalization or its test-time augmentation, so both go inside. torch.export (pt2) is a graph and its
weights: loading it runs no pickled code, which keeps fer's no-pickle rule outside fer too.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from fer.labels import IMAGE_SIZE
from fer.training import tta

INPUT_SHAPE = (1, IMAGE_SIZE, IMAGE_SIZE)  # per image; a batch of any size in front


OUT_OF_RANGE = "a face's pixels must be finite gray levels from 0 to 255, as FER2013 stores them"
SCALED_TO_ONE = ("a face's pixels look scaled to 0-1 (fractions, none above 1): send gray levels from 0 to 255 "
                 "(multiply by 255)")


class Probabilities(nn.Module):
    """float32 images (N, 1, 48, 48) with values 0–255 → (N, classes) probabilities, TTA `mode` averaged.

    Faces on another scale are refused, not answered: NaN, a 16-bit range or faces already divided by 255
    would give confident nonsense. The checks are graph ops (`_assert_async`), so they travel in the pt2 and a
    served model answers such a request with its reason."""

    def __init__(self, normalizer: nn.Module, net: nn.Module, mode: str):
        super().__init__()
        self.normalizer, self.net, self.mode = normalizer, net, mode

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        torch._assert_async(((images >= 0) & (images <= 255)).all(), OUT_OF_RANGE)
        fractions_to_one = (images.amax(dim=(1, 2, 3)) <= 1) & (images != images.round()).flatten(1).any(dim=1)
        torch._assert_async(~fractions_to_one.any(), SCALED_TO_ONE)
        return tta.probabilities(lambda x: self.net(self.normalizer(x)), images / 255.0, self.mode)


def exportable(module) -> Probabilities:
    """A CPU copy of a FERModule's tested weights (the EMA's when it averaged) behind `Probabilities`."""
    normalizer, net = (copy.deepcopy(m).cpu().float().eval() for m in (module.normalizer, module.net))
    return Probabilities(normalizer, net.to(memory_format=torch.contiguous_format), module.tta).eval()


def example_images(n: int = 2) -> torch.Tensor:
    """Mid-grey faces to trace the graph with: two, so that torch.export keeps the batch dimension dynamic."""
    return torch.full((n, *INPUT_SHAPE), 128.0)
