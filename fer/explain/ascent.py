"""Feature visualization: the input images that most activate a layer's filters, found by gradient ascent.

Plain pixel-space ascent on a 48×48 input turns into high-frequency noise that activates a filter without
showing anything a person can read. So, as in Lucid (Olah et al., 2017), the image is parametrized by its
Fourier spectrum scaled by 1/frequency (each step then moves low frequencies as much as high ones), squashed
into [0, 1] by a sigmoid, and every step sees it slightly shifted and rotated, so only patterns that survive
small transforms pay off; small total-variation and L2 penalties and an optional periodic blur do the rest.
Captum has no released feature-visualization module, hence this small loop.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from captum.attr import LayerActivation  # noqa: E402
from kornia.filters import gaussian_blur2d  # noqa: E402
from kornia.geometry.transform import get_rotation_matrix2d, warp_affine  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from torch import nn  # noqa: E402

from fer.explain.figures import NO_TICKS  # noqa: E402
from fer.labels import IMAGE_SIZE  # noqa: E402

DECAY = 1.0
"""Power of the 1/frequency spectrum scaling; 1 gives natural-image-like (pink) statistics."""

INIT_STD = 0.01
"""Std of the initial spectrum coefficients: a faint noise image close to uniform grey."""

SPECTRUM_GAIN = 4.0
"""The spectrum's image is divided by this before the sigmoid (as in Lucid), so Adam's steps stay gentle."""


@dataclass
class AscentResult:
    images: torch.Tensor  # (C, 1, 48, 48) in [0, 1], one per requested channel
    channels: list[int]
    start: torch.Tensor  # (C,) target channel's mean activation on the starting image
    final: torch.Tensor  # (C,) target channel's mean activation on the final image
    all_final: torch.Tensor  # (C, K) every channel's mean activation of the layer on each final image


class _Reached(Exception):
    """Raised by the hook once the layer has run: the rest of the network is not needed for the loss."""


def _spectrum_scale(size: int, device: torch.device) -> torch.Tensor:
    """1 / max(f, 1/size)^DECAY over the rfft2 grid, f in cycles per pixel (DC capped like the lowest band)."""
    fy = torch.fft.fftfreq(size, device=device)[:, None]
    fx = torch.fft.rfftfreq(size, device=device)[None, :]
    return 1.0 / torch.sqrt(fx**2 + fy**2).clamp(min=1.0 / size) ** DECAY


def _logits(spectrum: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """The image before the sigmoid: the scaled spectrum back in pixels."""
    return torch.fft.irfft2(torch.view_as_complex(spectrum) * scale, s=(IMAGE_SIZE, IMAGE_SIZE), norm="ortho") / (
        SPECTRUM_GAIN
    )


def _channel_means(out: torch.Tensor) -> torch.Tensor:
    """(B, K): mean over spatial positions for conv outputs, the unit's value for Linear outputs."""
    return out.flatten(2).mean(2) if out.dim() > 2 else out


def _jitter_and_rotate(x: torch.Tensor, jitter: int, rotation: float, gen: torch.Generator) -> torch.Tensor:
    """Shift each image by up to `jitter` px and rotate it by up to ±`rotation`°, in one reflection-padded warp
    (reflection, not zeros, so the borders do not give edge filters a free pattern)."""
    b = x.shape[0]
    shift = torch.randint(-jitter, jitter + 1, (b, 2), generator=gen).to(x)
    angle = ((torch.rand(b, generator=gen) * 2 - 1) * rotation).to(x)
    center = torch.full((b, 2), (IMAGE_SIZE - 1) / 2, dtype=x.dtype, device=x.device)
    matrix = get_rotation_matrix2d(center, angle, torch.ones(b, 2, dtype=x.dtype, device=x.device))
    matrix = torch.cat([matrix[:, :, :2], matrix[:, :, 2:] + shift[:, :, None]], dim=2)
    return warp_affine(x, matrix, (IMAGE_SIZE, IMAGE_SIZE), padding_mode="reflection")


def _total_variation(x: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference between neighbouring pixels, summed over the batch like the objective."""
    dy = (x[..., 1:, :] - x[..., :-1, :]).abs().mean((1, 2, 3))
    dx = (x[..., :, 1:] - x[..., :, :-1]).abs().mean((1, 2, 3))
    return (dx + dy).sum()


def visualize_filters(
    forward: nn.Module,
    layer: nn.Module,
    channels: Sequence[int],
    steps: int = 200,
    lr: float = 0.05,
    jitter: int = 2,
    rotation: float = 5.0,
    tv_weight: float = 0.05,
    l2_weight: float = 0.01,
    blur_every: int = 0,
    seed: int = 0,
    contrast: float = 0.0,
    each_step: Callable[[], None] = lambda: None,
) -> AscentResult:
    """Image i maximizes the mean activation of `layer`'s channel `channels[i]`, all optimized as one batch.

    With `contrast` > 0 the objective is that mean minus `contrast` times the strongest other channel's mean:
    a layer's broadly tuned channels respond to almost any pattern, and without it an image can excite one of
    them more than the filter it was made for.

    `forward` is the whole model on [0, 1] images (B, 1, 48, 48); `layer` is a module inside it. The model is
    put in eval mode (BatchNorm running stats, no dropout) and its parameters are frozen while it runs, then
    restored, so they get no gradients. The same `seed` gives the same images. `each_step` runs before every
    step (a requested stop raises there: an ascent over a large layer takes minutes).
    """
    channels = [int(c) for c in channels]
    if not channels:
        raise ValueError("channels must not be empty")
    device = next(forward.parameters(), torch.empty(0)).device
    gen = torch.Generator().manual_seed(seed)
    scale = _spectrum_scale(IMAGE_SIZE, device)
    spectrum = (torch.randn((len(channels), 1, *scale.shape, 2), generator=gen) * INIT_STD).to(device)
    spectrum.requires_grad_(True)
    index = torch.arange(len(channels), device=device)
    target = torch.tensor(channels, device=device)
    # LayerActivation.attribute runs under torch.no_grad, so the ascent loop reads the layer with its own hook.
    reader = LayerActivation(forward, layer)

    def readout(images: torch.Tensor) -> torch.Tensor:
        return _channel_means(reader.attribute(images)).float()

    captured: list[torch.Tensor] = []

    def hook(_module, _inputs, output):
        captured.append(output)
        raise _Reached

    was_training = forward.training
    grad_flags = [(p, p.requires_grad) for p in forward.parameters()]
    forward.eval()
    for p, _ in grad_flags:
        p.requires_grad_(False)
    try:
        with torch.no_grad():
            start_all = readout(torch.sigmoid(_logits(spectrum, scale)))
        if not all(0 <= c < start_all.shape[1] for c in channels):
            raise ValueError(f"channels {channels} out of range for a layer with {start_all.shape[1]} channels")
        optimizer = torch.optim.Adam([spectrum], lr=lr)
        handle = layer.register_forward_hook(hook)
        try:
            for step in range(steps):
                each_step()
                images = torch.sigmoid(_logits(spectrum, scale))
                captured.clear()
                try:
                    forward(_jitter_and_rotate(images, jitter, rotation, gen))
                except _Reached:
                    pass
                if not captured:
                    raise ValueError("`layer` did not run in `forward`; is it a module of this model?")
                means = _channel_means(captured[0])
                activation = means[index, target].sum()
                if contrast and means.shape[1] > 1:
                    rest = means.scatter(1, target[:, None], float("-inf")).amax(1)
                    activation = activation - contrast * rest.sum()
                penalty = tv_weight * _total_variation(images) + l2_weight * ((images - 0.5) ** 2).mean((1, 2, 3)).sum()
                optimizer.zero_grad()
                (penalty - activation).backward()
                optimizer.step()
                if blur_every and (step + 1) % blur_every == 0:
                    _blur_(spectrum, scale)
        finally:
            handle.remove()
        with torch.no_grad():
            images = torch.sigmoid(_logits(spectrum, scale))
            final_all = readout(images)
    finally:
        for p, flag in grad_flags:
            p.requires_grad_(flag)
        forward.train(was_training)
    return AscentResult(
        images=images.detach(),
        channels=channels,
        start=start_all[index, target].cpu(),
        final=final_all[index, target].cpu(),
        all_final=final_all.cpu(),
    )


@torch.no_grad()
def _blur_(spectrum: torch.Tensor, scale: torch.Tensor) -> None:
    """Blur the pre-sigmoid image and write it back as spectrum coefficients: damps the high frequencies
    the ascent keeps adding (the parametrization is linear and invertible, so this is exact)."""
    blurred = gaussian_blur2d(_logits(spectrum, scale), (3, 3), (0.5, 0.5))
    coeffs = torch.fft.rfft2(blurred * SPECTRUM_GAIN, norm="ortho") / scale
    spectrum.copy_(torch.view_as_real(coeffs))


def filters_figure(result: AscentResult, title: str, columns: int = 8) -> Figure:
    """One grey tile per filter, titled with its index and the final mean activation it reached."""
    count = len(result.channels)
    columns = max(1, min(columns, count))
    rows = math.ceil(count / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(1.3 * columns, 1.45 * rows + 0.5), squeeze=False,
                             layout="constrained", subplot_kw=NO_TICKS)
    for i, ax in enumerate(axes.flat):
        if i >= count:
            ax.remove()
            continue
        ax.imshow(result.images[i, 0].cpu().numpy(), cmap="gray", vmin=0, vmax=1)
        ax.set_title(f"f{result.channels[i]}  {float(result.final[i]):.2f}", fontsize=8)
        ax.set_axis_off()
    fig.suptitle(title)
    return fig
