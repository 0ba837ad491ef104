"""Figures of explanations: saliency rows (original, heat map, mask) and a layer's feature maps."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from captum.attr import visualization as viz  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

# Axes of pictures, made without ticks: hidden ticks are still laid out at every draw (3× the cost of a saliency
# figure, whose heat maps Captum gives the costly "none" tick position)
NO_TICKS = {"xticks": [], "yticks": []}


def saliency_figure(images: np.ndarray, maps: np.ndarray, labels, preds, confidences, title: str,
                    threshold: float, note: str | None = None, method: str = "saliency",
                    captions: list[str] | None = None) -> Figure:
    """One row per probe: the face, Captum's heat map of |attribution|, and the face where the map
    (normalized to its maximum) exceeds `threshold`. A probe is titled by its true class, or its caption (a
    user's photo has no label); `labels` and `preds` are class names."""
    n = len(images)
    fig, axes = plt.subplots(n, 3, figsize=(6.6, 2.3 * n + 0.6), squeeze=False, layout="constrained",
                             subplot_kw=NO_TICKS)
    for i in range(n):
        face, attr = images[i], maps[i]
        ax_face, ax_heat, ax_mask = axes[i]
        ax_face.imshow(face, cmap="gray", vmin=0, vmax=1)
        head = captions[i] if captions else f"true {labels[i]}"
        ax_face.set_title(f"{head}\npred {preds[i]} ({confidences[i]:.0%})", fontsize=8)
        if attr.max() > 0:
            # Captum scales by the 98th percentile; a sparse map (Grad-CAM) may need its maximum instead
            outliers = 2 if np.percentile(attr, 98) > 0 else 0
            viz.visualize_image_attr(attr[..., None], face[..., None], method="heat_map", sign="absolute_value",
                                     plt_fig_axis=(fig, ax_heat), use_pyplot=False, cmap="inferno",
                                     outlier_perc=outliers)
            ax_heat.set_title(method, fontsize=8)
        else:
            ax_heat.imshow(np.zeros_like(attr), cmap="inferno", vmin=0, vmax=1)
            ax_heat.set_title("all zero", fontsize=8)
        keep = attr / max(attr.max(), 1e-12) > threshold
        ax_mask.imshow(np.where(keep, face, 0.0), cmap="gray", vmin=0, vmax=1)
        ax_mask.set_title(f"mask (> {threshold:.0%} of max)", fontsize=8)
        for ax in axes[i]:
            ax.set_axis_off()
    fig.suptitle(title + (f"\n{note}" if note else ""), fontsize=9)
    return fig


def layer_output_figure(face: np.ndarray, maps: np.ndarray, title: str, columns: int = 8) -> Figure:
    """The face beside its first feature maps of one layer (each scaled on its own)."""
    n = len(maps)
    rows = max(1, math.ceil(n / columns))
    fig = plt.figure(figsize=(2.2 + 1.1 * columns, 1.2 * rows + 0.6), layout="constrained")
    grid = fig.add_gridspec(rows, columns + 2)
    ax = fig.add_subplot(grid[:, :2], **NO_TICKS)
    ax.imshow(face, cmap="gray", vmin=0, vmax=1)
    ax.set_title("input", fontsize=8)
    ax.set_axis_off()
    for k in range(n):
        ax = fig.add_subplot(grid[k // columns, 2 + k % columns], **NO_TICKS)
        ax.imshow(maps[k], cmap="viridis")
        ax.set_title(f"ch {k}", fontsize=7)
        ax.set_axis_off()
    fig.suptitle(title, fontsize=9)
    return fig
