"""Matplotlib figures of one run: its confusion matrix and its training curves."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from fer.artifacts.confusion import row_normalized  # noqa: E402


def confusion_figure(counts: np.ndarray, title: str, classes: tuple[str, ...]) -> Figure:
    """Row-normalized colours, each cell annotated with its share and count."""
    counts = np.asarray(counts)
    rates = row_normalized(counts)
    n = len(classes)
    fig, ax = plt.subplots(figsize=(7.5 + 0.5 * (n - 7), 6.5 + 0.5 * (n - 7)), layout="constrained")
    im = ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(n), classes, rotation=45, ha="right")
    ax.set_yticks(range(n), classes)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title)
    for i in range(n):
        for j in range(n):
            color = "white" if rates[i, j] > 0.5 else "black"
            ax.text(j, i, f"{rates[i, j]:.0%}\n{counts[i, j]}", ha="center", va="center", fontsize=8, color=color)
    fig.colorbar(im, ax=ax, fraction=0.046, label="share of the true class")
    return fig


def training_curves_figure(history: dict[str, list[tuple[int, float]]], title: str) -> Figure:
    """Accuracy and loss per epoch, train and val; `history` maps metric name → [(epoch, value)]. Epochs are
    plotted as counted everywhere else (progress bar, MLflow steps, checkpoint names): from 0."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), layout="constrained")
    for ax, kind in zip(axes, ("acc", "loss"), strict=True):
        for split, style in (("train", "-o"), ("val", "-s")):
            points = history.get(f"{split}_{kind}", [])
            if points:
                epochs, values = zip(*points, strict=True)
                ax.plot(epochs, values, style, label=split, markersize=3)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel("accuracy" if kind == "acc" else "loss")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    return fig


SMOOTH_S = 0.5  # the window of the timeline's moving average: expressions change slower than frames


def timeline_figure(faces: dict[int, tuple[list[float], np.ndarray]], classes: tuple[str, ...],
                    dominant: dict[int, str]) -> Figure:
    """One panel per face id: each class's probability over the seconds the face was seen (`faces` maps id →
    (seconds, probabilities (n, classes))), smoothed over SMOOTH_S, with the dominant expression in the title."""
    ids = sorted(faces)
    fig, axes = plt.subplots(max(1, len(ids)), 1, figsize=(10, 1.2 + 2.2 * max(1, len(ids))), sharex=True,
                             layout="constrained", squeeze=False)
    colors = plt.get_cmap("tab10").colors
    for ax, face_id in zip(axes[:, 0], ids, strict=False):
        seconds, probs = np.asarray(faces[face_id][0]), faces[face_id][1]
        step = float(np.median(np.diff(seconds))) if len(seconds) > 1 else 1.0
        window = max(1, min(len(seconds), round(SMOOTH_S / step) if step > 0 else 1))
        kernel = np.ones(window) / window
        for k, name in enumerate(classes):
            padded = np.pad(probs[:, k], (window // 2, window - 1 - window // 2), mode="edge")
            ax.plot(seconds, np.convolve(padded, kernel, mode="valid"), color=colors[k % len(colors)], label=name,
                    marker="." if len(seconds) == 1 else None)
        ax.set_ylim(0, 1)
        ax.set_ylabel("probability")
        ax.set_title(f"face #{face_id}: mostly {dominant[face_id]}", loc="left", fontsize=10)
        ax.grid(alpha=0.3)
    axes[-1, 0].set_xlabel("seconds")
    if ids:
        axes[0, 0].legend(ncol=len(classes), loc="lower left", bbox_to_anchor=(0, 1.15), fontsize=8, frameon=False)
    else:
        axes[0, 0].text(0.5, 0.5, "no face was found", ha="center", va="center", transform=axes[0, 0].transAxes)
    return fig
