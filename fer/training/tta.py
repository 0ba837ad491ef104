"""Test-time augmentation (`test.tta`): class probabilities averaged over views of each face.

`flip`: the face and its mirror image. `tencrop`: the face padded by `PAD` pixels (reflected, like training's
random crop) and cut back to 48×48 at the four corners and the center — the center crop is the face itself —
each also mirrored; every view has the input's shape, so any model takes it and a compiled one sees no new shape.
`tencrop_inner`: the corners and the center cut at 44 px from the face itself, nothing invented at the border,
each mirrored: views like the random crops `aug.crop_size` trains on, for the models that take any face size
(global average pooling, `FULLY_CONVOLUTIONAL`). On experiment=laptop's model it beats `tencrop` on PublicTest
(README: Ten minutes on a laptop).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F

from fer.registry import Registry

PAD = 4  # pixels: the corner crops shift the face by 4 px each way, within `aug=strong`'s crop_padding
INNER = 44  # pixels: tencrop_inner's views, the face less PAD rows and columns


def corners_and_center(x: torch.Tensor, h: int, w: int) -> Iterator[torch.Tensor]:
    """The batch cut to h×w at its four corners, then at its center."""
    dy, dx = x.shape[-2] - h, x.shape[-1] - w
    for top, left in ((0, 0), (0, dx), (dy, 0), (dy, dx), (dy // 2, dx // 2)):
        yield x[..., top:top + h, left:left + w]


def crops(x: torch.Tensor, pad: int = PAD) -> Iterator[torch.Tensor]:
    """The five crops of the padded batch: four corners, then the center (= `x`)."""
    return corners_and_center(F.pad(x, (pad, pad, pad, pad), mode="reflect"), *x.shape[-2:])


def flips(x: torch.Tensor) -> Iterator[torch.Tensor]:
    yield x
    yield x.flip(-1)


def mirrored(views: Iterator[torch.Tensor]) -> Iterator[torch.Tensor]:
    for view in views:
        yield from flips(view)


def tencrop(x: torch.Tensor) -> Iterator[torch.Tensor]:
    return mirrored(crops(x))


def tencrop_inner(x: torch.Tensor) -> Iterator[torch.Tensor]:
    return mirrored(corners_and_center(x, INNER, INNER))


TTA_MODES = Registry("test.tta", {"none": lambda x: iter([x]), "flip": flips, "tencrop": tencrop,
                                  "tencrop_inner": tencrop_inner})
RESIZING = ("tencrop_inner",)  # modes whose views are smaller than the face


def views(x: torch.Tensor, mode: str) -> Iterator[torch.Tensor]:
    return TTA_MODES.get(mode)(x)


def probabilities(logits_fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, mode: str) -> torch.Tensor:
    """Softmax of `logits_fn` averaged over the views of `x` (one call per view, each of `x`'s shape)."""
    total, n = None, 0
    for view in views(x, mode):
        p = logits_fn(view.contiguous()).float().softmax(dim=1)
        total, n = (p if total is None else total + p), n + 1
    return total / n
