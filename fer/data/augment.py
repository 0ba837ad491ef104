"""Batched augmentation (`aug=`) with per-sample random parameters, on whatever device holds the batch.

Two implementations of the same options (`aug.impl`): kornia's transforms, one module per option, and
`fused`, which folds crop, flip and the random affine into one matrix per sample and one `grid_sample` for
the batch, and erases with a batched mask — a handful of kernels per batch instead of kornia's
per-transform parameter bookkeeping, which dominates on a GPU at FER2013's 48×48.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import kornia.augmentation as K
import torch
import torch.nn.functional as F
from torch import nn

from fer.labels import IMAGE_SIZE
from fer.registry import Registry

ERASE_SCALE = (0.02, 0.25)  # fraction of the image a random erasing covers (kornia's and torchvision's default)
ERASE_RATIO = (0.3, 3.3)  # its aspect ratio h/w, drawn log-uniformly


def has_affine(cfg) -> bool:
    """Whether the `aug` options include a random affine (rotation, shift, shear or zoom)."""
    return bool(cfg.rotation or cfg.shift or cfg.shear or cfg.zoom)


def moves_pixels(cfg) -> bool:
    """Whether the `aug` options crop, flip or warp: what `FusedAugmentation` does in one `grid_sample`."""
    return bool(cfg.crop_padding or cfg.hflip or has_affine(cfg) or smaller_crop(cfg))


def smaller_crop(cfg) -> int:
    """`aug.crop_size` when it crops training faces smaller than 48 px, else 0."""
    size = cfg.get("crop_size") or 0
    return size if size < IMAGE_SIZE else 0


def training_side(cfg) -> int:
    """The side in px of the faces the model trains on (what a training step costs)."""
    return smaller_crop(cfg) or IMAGE_SIZE


def build_kornia(cfg) -> nn.Module:
    """One kornia transform per option, in the order crop, flip, affine, erasing."""
    ops: list[nn.Module] = []
    if cfg.crop_padding:
        ops.append(K.RandomCrop((IMAGE_SIZE, IMAGE_SIZE), padding=cfg.crop_padding, padding_mode="reflect"))
    if cfg.hflip:
        ops.append(K.RandomHorizontalFlip())
    if has_affine(cfg):
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
        ops.append(K.RandomErasing(p=cfg.erasing, scale=ERASE_SCALE, value=0.0))
    if crop := smaller_crop(cfg):
        ops.append(K.RandomCrop((crop, crop)))
    return K.AugmentationSequential(*ops, data_keys=["input"])


def build_augmentation(cfg) -> nn.Module:
    """Transforms for images in [0, 1], shape (B, 1, 48, 48), by `aug.impl`; identity for `aug=none`."""
    if not (moves_pixels(cfg) or cfg.erasing):
        return nn.Identity()
    return AUGMENTATIONS.get(cfg.get("impl", "kornia"))(cfg)


def uniform(n: int, low: float, high: float, like: torch.Tensor) -> torch.Tensor:
    return torch.empty(n, device=like.device, dtype=torch.float32).uniform_(low, high)


class Warp(NamedTuple):
    """One batch's random geometry: `a` (n, 2, 2) = flip · rotation · zoom · shear, `shift` (n, 2) in normalized
    units, `flip` (n,) ±1, `pixels` (n, 2) the crop-padding offset and `window` (n, 2) the output window's corner,
    whole pixels, both (x, y)."""

    a: torch.Tensor
    shift: torch.Tensor
    flip: torch.Tensor
    pixels: torch.Tensor
    window: torch.Tensor


class FusedAugmentation(nn.Module):
    """The `aug` options as one affine warp per sample plus a batched erasing mask.

    In normalized coordinates the forward map is p' = A p + t with A = flip · rotation · zoom · shear and t the
    random shift plus the crop's whole-pixel offset; `grid_sample` reads the input at A⁻¹(p' − t). Outside the
    image it repeats the border (Keras's fill_mode="nearest"), for the crop too (kornia pads by reflection).
    With `crop_size` the warp's output is a random whole-pixel window of that size, read in the same
    `grid_sample`: smaller faces cost less to train on. Without an affine every read is a whole pixel, so the
    same warp is one index gather (`gather`), at a third of `grid_sample`'s cost on a CPU.
    """

    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cfg = self.cfg
        if moves_pixels(cfg):
            warp = self.draw(x)
            x = self.resample(x, warp) if has_affine(cfg) else self.gather(x, warp)
        if cfg.erasing:
            x = self.erase(x)
        return x

    def draw(self, x: torch.Tensor) -> Warp:
        cfg, n, size = self.cfg, x.shape[0], x.shape[-1]
        angle = uniform(n, -cfg.rotation, cfg.rotation, x) * (math.pi / 180)
        shear = torch.tan(uniform(n, -cfg.shear, cfg.shear, x) * (math.pi / 180))
        scale = uniform(n, 1 - cfg.zoom, 1 + cfg.zoom, x)
        flip = torch.where(torch.rand(n, device=x.device) < 0.5, -1.0, 1.0) if cfg.hflip else torch.ones_like(scale)
        cos, sin = torch.cos(angle) * scale, torch.sin(angle) * scale
        # A = diag(flip, 1) · R(angle) · scale · [[1, shear], [0, 1]]
        a = torch.stack([torch.stack([flip * cos, flip * (cos * shear - sin)], -1),
                         torch.stack([sin, sin * shear + cos], -1)], -2)
        shift = uniform(2 * n, -2 * cfg.shift, 2 * cfg.shift, x).view(n, 2)
        pad = cfg.crop_padding
        pixels = (torch.randint(-pad, pad + 1, (n, 2), device=x.device) if pad
                  else torch.zeros(n, 2, dtype=torch.long, device=x.device))
        out = smaller_crop(cfg) or size
        window = torch.randint(0, size - out + 1, (n, 2), device=x.device)
        return Warp(a, shift, flip, pixels, window)

    def resample(self, x: torch.Tensor, warp: Warp) -> torch.Tensor:
        """The warp by `grid_sample`, bilinear: any affine."""
        n, size = x.shape[0], x.shape[-1]
        a = warp.a
        t = warp.shift + warp.pixels.float() * (2 / size)
        det = a[:, 0, 0] * a[:, 1, 1] - a[:, 0, 1] * a[:, 1, 0]  # closed form: linalg.inv would sync the GPU
        inv = torch.stack([torch.stack([a[:, 1, 1], -a[:, 0, 1]], -1),
                           torch.stack([-a[:, 1, 0], a[:, 0, 0]], -1)], -2) / det.view(n, 1, 1)
        out = smaller_crop(self.cfg) or size
        # the output window in the warped image's normalized coordinates: q ↦ (out / size) q + offset, its pixel
        # centres on the image's when the offset is a whole number k of pixels from the corner
        offset = (2 * warp.window.float() + out) / size - 1
        theta = torch.cat([inv * (out / size), inv @ (offset - t).unsqueeze(-1)], dim=-1).to(x.dtype)
        grid = F.affine_grid(theta, [n, x.shape[1], out, out], align_corners=False)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)

    def gather(self, x: torch.Tensor, warp: Warp) -> torch.Tensor:
        """The warp without rotation, shear, zoom or shift: output pixel j of the window reads input pixel
        j + window − pixels (mirrored where flipped), clamped to the border as `resample` reads it."""
        n, channels, size = x.shape[0], x.shape[1], x.shape[-1]
        out = smaller_crop(self.cfg) or size
        steps = torch.arange(out, device=x.device)
        cols = warp.window[:, 0, None] - warp.pixels[:, 0, None] + steps
        cols = torch.where(warp.flip[:, None] < 0, size - 1 - cols, cols).clamp(0, size - 1)
        rows = (warp.window[:, 1, None] - warp.pixels[:, 1, None] + steps).clamp(0, size - 1)
        index = (rows[:, :, None] * size + cols[:, None, :]).view(n, 1, out * out).expand(n, channels, -1)
        return x.reshape(n, channels, size * size).gather(2, index).view(n, channels, out, out)

    def erase(self, x: torch.Tensor) -> torch.Tensor:
        n, h, w = x.shape[0], x.shape[-2], x.shape[-1]
        area = uniform(n, *ERASE_SCALE, x) * (h * w)
        ratio = torch.exp(uniform(n, math.log(ERASE_RATIO[0]), math.log(ERASE_RATIO[1]), x))
        eh = torch.sqrt(area * ratio).round().clamp(1, h)
        ew = torch.sqrt(area / ratio).round().clamp(1, w)
        top = (torch.rand(n, device=x.device) * (h - eh + 1)).floor()
        left = (torch.rand(n, device=x.device) * (w - ew + 1)).floor()
        rows = torch.arange(h, device=x.device).view(1, h, 1)
        cols = torch.arange(w, device=x.device).view(1, 1, w)
        inside = ((rows >= top.view(n, 1, 1)) & (rows < (top + eh).view(n, 1, 1))
                  & (cols >= left.view(n, 1, 1)) & (cols < (left + ew).view(n, 1, 1)))
        chosen = (torch.rand(n, device=x.device) < self.cfg.erasing).view(n, 1, 1)
        return x.masked_fill((inside & chosen).unsqueeze(1), 0.0)


AUGMENTATIONS = Registry("aug.impl", {"kornia": build_kornia, "fused": FusedAugmentation})
