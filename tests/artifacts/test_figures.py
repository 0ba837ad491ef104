"""Figures with an epoch axis count epochs as the progress bar, MLflow's steps and checkpoint names do: from 0."""

from __future__ import annotations

import matplotlib.pyplot as plt

from fer.artifacts.figures import training_curves_figure
from fer.sweeps.comparison import Job, val_acc_figure


def plotted_epochs(fig) -> list[list[float]]:
    epochs = [list(line.get_xdata()) for ax in fig.axes for line in ax.get_lines()]
    plt.close(fig)
    return epochs


def test_curves_plot_each_epoch_at_its_mlflow_step():
    history = {f"{split}_{kind}": [(0, 0.5), (1, 0.6), (2, 0.7)]
               for split in ("train", "val") for kind in ("acc", "loss")}
    assert plotted_epochs(training_curves_figure(history, "run")) == [[0, 1, 2]] * 4


def test_a_sweeps_val_acc_figure_plots_each_epoch_at_its_mlflow_step():
    job = Job("id", "run", "optim.lr=0.1", "FINISHED", 10, 0.6, 0.6, 2, 1.0, val_curve=[(0, 0.5), (1, 0.6)])
    assert plotted_epochs(val_acc_figure([job])) == [[0, 1]]
