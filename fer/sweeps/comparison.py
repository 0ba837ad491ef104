"""Side-by-side results of a sweep's jobs: a table (markdown, csv) and two figures, read back from MLflow; jobs that
differ only by their seed grouped into one configuration (mean ± std over n), and how far apart two
configurations must be before the test faces and the seeds can no longer explain the difference."""

from __future__ import annotations

import csv
import io
import json
import math
import re
from dataclasses import dataclass, field

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
from mlflow.tracking import MlflowClient  # noqa: E402

from fer.tracking import tags  # noqa: E402

COLUMNS = ("job", "run", "overrides", "params", "best_val_acc", "test_acc", "epochs", "sec_per_epoch", "status")


@dataclass
class Job:
    run_id: str
    name: str
    overrides: str
    status: str
    params: int | None
    best_val_acc: float | None
    test_acc: float | None
    epochs: int
    sec_per_epoch: float | None
    val_curve: list[tuple[int, float]] = field(default_factory=list)
    job: int = 0

    def row(self) -> dict[str, object]:
        def fmt(v, spec):
            return "" if v is None else format(v, spec)

        return {"job": self.job, "run": self.name, "overrides": self.overrides, "params": fmt(self.params, "d"),
                "best_val_acc": fmt(self.best_val_acc, ".4f"), "test_acc": fmt(self.test_acc, ".4f"),
                "epochs": self.epochs, "sec_per_epoch": fmt(self.sec_per_epoch, ".2f"), "status": self.status}


def children(client: MlflowClient, parent_id: str) -> list[Job]:
    """The sweep's child runs in job order, each labelled by the overrides that tell it apart (the sweep's
    axes; the overrides every job shares are left out)."""
    parent = client.get_run(parent_id)
    runs = client.search_runs([parent.info.experiment_id], f"tags.{tags.PARENT_RUN} = '{parent_id}'",
                              max_results=10000)
    jobs = sorted((job_of(client, r) for r in runs), key=lambda j: (j.job, j.name))
    shared = set.intersection(*(set(j.overrides.split()) for j in jobs)) if len(jobs) > 1 else set()
    for j in jobs:
        j.overrides = " ".join(o for o in j.overrides.split() if o not in shared)
    return jobs


def job_of(client: MlflowClient, run) -> Job:
    history = sorted((m.step, m.value, m.timestamp) for m in client.get_metric_history(run.info.run_id, "val_acc"))
    params = run.data.params.get("params_total")
    stamps = [t for _, _, t in history]
    # Between the first and last epoch's val_acc, so start-up (imports, data, the first epoch's compile) is left out.
    per_epoch = ((stamps[-1] - stamps[0]) / 1000 / (len(stamps) - 1) if len(stamps) > 1
                 else (stamps[0] - run.info.start_time) / 1000 if stamps else None)
    return Job(run_id=run.info.run_id, name=run.info.run_name, overrides=run.data.tags.get(tags.OVERRIDES, ""),
               # KILLED by Optuna's pruner; FAILED, and run again as another trial
               status="PRUNED" if tags.PRUNED in run.data.tags else "RETRIED" if tags.RETRIED in run.data.tags
               else run.info.status,
               params=int(params) if params else None,
               best_val_acc=max((v for _, v, _ in history), default=None),
               test_acc=run.data.metrics.get("test_acc"), epochs=len(history), sec_per_epoch=per_epoch,
               val_curve=[(s, v) for s, v, _ in history], job=int(run.data.tags.get(tags.JOB, 0)))


SEED = re.compile(r"(^|\s)seed=\S+")
Z95 = 1.959964  # the normal quantile of a two-sided 95 % interval


@dataclass
class Config:
    """The finished jobs of one configuration: those whose overrides differ only in `seed=`."""

    label: str
    jobs: list[Job]

    @property
    def n(self) -> int:
        return len(self.jobs)

    @property
    def test_acc(self) -> float:
        return float(np.mean([j.test_acc for j in self.jobs]))

    @property
    def std(self) -> float:
        """The seeds' standard deviation (n − 1), 0 for one seed."""
        return float(np.std([j.test_acc for j in self.jobs], ddof=1)) if self.n > 1 else 0.0

    @property
    def best_val_acc(self) -> float:
        return float(np.mean([j.best_val_acc or 0.0 for j in self.jobs]))

    @property
    def sec_per_epoch(self) -> float | None:
        times = [j.sec_per_epoch for j in self.jobs if j.sec_per_epoch]
        return float(np.mean(times)) if times else None

    @property
    def params(self) -> int | None:
        return self.jobs[0].params

    def accuracy(self) -> str:
        """`0.6123 ± 0.0081 (n=3)`, or the one run's accuracy."""
        return f"{self.test_acc:.4f} ± {self.std:.4f} (n={self.n})" if self.n > 1 else f"{self.test_acc:.4f}"

    def variance(self, faces: int) -> float:
        """The variance of the mean test accuracy: each run's binomial sampling of `faces` test faces, and the
        spread between seeds where there are several."""
        p = self.test_acc
        return p * (1 - p) / (faces * self.n) + (self.std ** 2 / self.n if self.n > 1 else 0.0)


def configurations(jobs: list[Job]) -> list[Config]:
    """The finished jobs grouped by their overrides without `seed=`, in job order."""
    groups: dict[str, list[Job]] = {}
    for j in jobs:
        if j.test_acc is not None:
            groups.setdefault(SEED.sub(" ", j.overrides).strip() or j.name, []).append(j)
    return [Config(label, members) for label, members in groups.items()]


def difference(a: Config, b: Config, faces: int) -> tuple[float, float]:
    """a's mean test accuracy minus b's, and the half-width of its 95 % interval (normal approximation; the two
    configurations' test faces are taken as independent samples, which overstates the noise of paired runs)."""
    return a.test_acc - b.test_acc, Z95 * math.sqrt(a.variance(faces) + b.variance(faces))


def configurations_markdown(configs: list[Config]) -> str:
    lines = ["| configuration | n | test acc (mean ± std) | best val acc (mean) | params | s/epoch |",
             "|---|---|---|---|---|---|"]
    for c in configs:
        lines.append(f"| {c.label} | {c.n} | {c.test_acc:.4f} ± {c.std:.4f} | {c.best_val_acc:.4f} | "
                     f"{c.params if c.params is not None else ''} | "
                     f"{'' if c.sec_per_epoch is None else format(c.sec_per_epoch, '.2f')} |")
    return "\n".join(lines) + "\n"


def table_markdown(jobs: list[Job]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(str(j.row()[c]) for c in COLUMNS) + " |" for j in jobs]
    return "\n".join(lines) + "\n"


def table_csv(jobs: list[Job]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, COLUMNS)
    writer.writeheader()
    writer.writerows(j.row() for j in jobs)
    return out.getvalue()


FIGURE_LABEL = 40  # characters of a job's label under a bar or in a legend: a long path would squeeze the axes away


def label(job: Job, width: int | None = None) -> str:
    text = job.overrides or job.name
    return text if width is None or len(text) <= width else "…" + text[-(width - 1):]


def accuracy_figure(jobs: list[Job]):
    fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(jobs) + 2), 4.2), layout="constrained")
    x = np.arange(len(jobs))
    for offset, key, name in ((-0.2, "best_val_acc", "best val acc"), (0.2, "test_acc", "test acc")):
        values = [getattr(j, key) or 0.0 for j in jobs]
        bars = ax.bar(x + offset, values, 0.4, label=name)
        ax.bar_label(bars, fmt="%.3f", fontsize=7)
    ax.set_xticks(x, [label(j, FIGURE_LABEL) for j in jobs], rotation=20, ha="right", fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_ylabel("accuracy")
    ax.legend()
    ax.set_title("accuracy per job")
    return fig


def val_acc_figure(jobs: list[Job]):
    fig, ax = plt.subplots(figsize=(7, 4.2), layout="constrained")
    for j in jobs:
        if j.val_curve:
            steps, values = zip(*j.val_curve, strict=True)
            ax.plot(steps, values, marker="o", ms=3, label=label(j, FIGURE_LABEL))  # epochs from 0, as MLflow steps
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("val acc")
    if ax.lines:
        ax.legend(fontsize=7)
    ax.set_title("validation accuracy per epoch")
    return fig


def log_table(client: MlflowClient, run_id: str, jobs: list[Job], path: str) -> None:
    """The jobs as an MLflow table (`path` in the split-oriented JSON `MlflowClient.log_table` writes, listed in
    the run's `mlflow.loggedArtifacts` tag), replaced whole: `log_table` appends to an existing table, and a
    continued sweep logs its comparison again."""
    frame = pd.DataFrame([j.row() for j in jobs], columns=list(COLUMNS))
    client.log_text(run_id, frame.to_json(orient="split", index=False), path)
    listed = json.loads(client.get_run(run_id).data.tags.get(tags.LOGGED_ARTIFACTS, "[]"))
    if {"path": path, "type": "table"} not in listed:
        client.set_tag(run_id, tags.LOGGED_ARTIFACTS, json.dumps([*listed, {"path": path, "type": "table"}]))


def log_comparison(client: MlflowClient, parent_id: str) -> list[Job]:
    """comparison.md, comparison.csv, comparison.json (an MLflow table, which the UI shows as one),
    comparison_accuracy.png and comparison_val_acc.png into the parent."""
    jobs = children(client, parent_id)
    client.log_text(parent_id, table_markdown(jobs), "comparison.md")
    client.log_text(parent_id, table_csv(jobs), "comparison.csv")
    configs = configurations(jobs)
    if any(c.n > 1 for c in configs):
        client.log_text(parent_id, configurations_markdown(configs), "comparison_seeds.md")
    log_table(client, parent_id, jobs, "comparison.json")
    figures = ((accuracy_figure(jobs), "comparison_accuracy.png"), (val_acc_figure(jobs), "comparison_val_acc.png"))
    for fig, path in figures:
        client.log_figure(parent_id, fig, path)
        plt.close(fig)
    done = [j for j in jobs if j.test_acc is not None]
    if done:
        best = max(done, key=lambda j: j.best_val_acc or 0.0)
        client.log_metric(parent_id, "best_val_acc", best.best_val_acc or 0.0)
        client.log_metric(parent_id, "best_job_test_acc", best.test_acc)
        client.set_tag(parent_id, tags.BEST_RUN, best.run_id)
    return jobs
