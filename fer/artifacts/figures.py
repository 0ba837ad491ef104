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
