"""Figures with an epoch axis count epochs as the progress bar, MLflow's steps and checkpoint names do: from 0; a
sweep's comparison keeps its layout whatever its jobs are called."""

from __future__ import annotations

import io

import matplotlib.pyplot as plt

from fer.artifacts.figures import training_curves_figure
from fer.sweeps.comparison import Job, accuracy_figure, val_acc_figure


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


def test_a_sweep_over_long_paths_draws_its_comparison_without_squeezing_the_axes_away(recwarn):
    """A job labelled by a long path (`data.path=…`) is shortened to its end under its bar, so matplotlib keeps
    its layout (it warned "constrained_layout not applied" on the user's terminal)."""
    path = "data.path=/home/student/" + "deep/" * 30 + "fer2013.csv"
    jobs = [Job(str(k), "run", f"{path} seed={k}", "FINISHED", 10, 0.6, 0.6, 2, 1.0, val_curve=[(0, 0.5)])
            for k in range(2)]
    fig = accuracy_figure(jobs)
    fig.savefig(io.BytesIO())
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    plt.close(fig)
    assert labels == ["…" + f"{path} seed={k}"[-39:] for k in range(2)]
    assert not [w for w in recwarn if "constrained_layout" in str(w.message)]
