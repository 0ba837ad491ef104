"""Test-time augmentation (`test.tta`): class probabilities averaged over views of each face.

`flip`: the face and its mirror image. `tencrop`: the face padded by `PAD` pixels (reflected, like training's
random crop) and cut back to 48×48 at the four corners and the center — the center crop is the face itself —
each also mirrored. Every view has the input's shape, so a compiled model sees no new shape.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F

PAD = 4  # pixels: the corner crops shift the face by 4 px each way, within `aug=strong`'s crop_padding


def crops(x: torch.Tensor, pad: int = PAD) -> Iterator[torch.Tensor]:
    """The five crops of the padded batch: four corners, then the center (= `x`)."""
    h, w = x.shape[-2:]
    padded = F.pad(x, (pad, pad, pad, pad), mode="reflect")
    for top, left in ((0, 0), (0, 2 * pad), (2 * pad, 0), (2 * pad, 2 * pad), (pad, pad)):
        yield padded[..., top:top + h, left:left + w]


def views(x: torch.Tensor, mode: str) -> Iterator[torch.Tensor]:
    if mode == "none":
        yield x
        return
    bases = crops(x) if mode == "tencrop" else iter([x])
    for view in bases:
        yield view
        yield view.flip(-1)


def probabilities(logits_fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, mode: str) -> torch.Tensor:
    """Softmax of `logits_fn` averaged over the views of `x` (one call per view, each of `x`'s shape)."""
    total, n = None, 0
    for view in views(x, mode):
        p = logits_fn(view.contiguous()).float().softmax(dim=1)
        total, n = (p if total is None else total + p), n + 1
    return total / n
