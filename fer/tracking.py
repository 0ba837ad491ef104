"""MLflow plumbing: where runs go, what a run records about itself, and how to open the UI on it.

fer owns each run's lifecycle (create, params, tags, terminate) through `MlflowClient`, and hands
the run id to Lightning's `MLFlowLogger` for the metrics, so later work can nest runs or resume one.
"""

from __future__ import annotations

import csv
import io
import shlex
import subprocess
from importlib import metadata
from pathlib import Path

from mlflow.entities import Param, RunTag
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.loggers import MLFlowLogger

PACKAGES = ("torch", "pytorch-lightning", "torchmetrics", "hydra-core", "mlflow", "kornia", "captum", "numpy")


def resolve_uri(uri: str) -> str:
    """Make a relative sqlite path absolute, so the store is the one in the starting directory."""
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri.startswith(prefix + "/"):
        return prefix + str(Path(uri[len(prefix):]).resolve())
    return uri


def client_for(tracking) -> MlflowClient:
    return MlflowClient(tracking_uri=resolve_uri(tracking.uri))


def experiment_id(client: MlflowClient, tracking) -> str:
    """The id of `tracking.experiment`, creating it (with artifacts under `tracking.artifact_root`) if new."""
    name = tracking.experiment
    exp = client.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    location = Path(tracking.artifact_root).resolve().as_uri() if tracking.artifact_root else None
    return client.create_experiment(name, artifact_location=location)


def flatten(cfg: DictConfig) -> dict[str, str]:
    """The resolved config as dotted keys (`model.name`, `optim.lr`, …), values as MLflow params."""
    out: dict[str, str] = {}

    def walk(node, prefix: str) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, f"{prefix}{k}.")
        else:
            out[prefix[:-1]] = str(node)

    walk(OmegaConf.to_container(cfg, resolve=True), "")
    return out


def git_commit() -> str:
    try:
        here = Path(__file__).resolve().parent
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def provenance_tags(overrides: list[str]) -> dict[str, str]:
    """What re-running this run months later needs: the command (this job's overrides, also inside a
    multirun sweep), the code and the package versions."""
    tags = {"fer.command": shlex.join(["python", "-m", "fer.train", *overrides]),
            "mlflow.source.git.commit": git_commit()}
    for pkg in PACKAGES:
        try:
            tags[f"fer.version.{pkg}"] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    return tags


def start_run(client: MlflowClient, exp_id: str, run_name: str, params: dict[str, object],
              tags: dict[str, str]) -> str:
    run = client.create_run(exp_id, run_name=run_name, tags=tags)
    items = [Param(k, str(v)) for k, v in params.items()]
    for i in range(0, len(items), 100):
        client.log_batch(run.info.run_id, params=items[i:i + 100])
    return run.info.run_id


def set_tags(client: MlflowClient, run_id: str, tags: dict[str, str]) -> None:
    client.log_batch(run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])


class RunLogger(MLFlowLogger):
    """Lightning's MLFlowLogger on a run fer created: epoch-level metrics use the epoch as their step,
    and the run is left open at the end of fit (fer terminates it after testing and artifacts)."""

    def log_metrics(self, metrics, step=None):
        if "epoch" in metrics:
            step = int(metrics["epoch"])
            metrics = {k: v for k, v in metrics.items() if k != "epoch"}
        super().log_metrics(metrics, step)

    def finalize(self, status: str = "success") -> None:
        pass


def ui_command(tracking) -> str:
    """The command that opens the MLflow UI on this store, bound to loopback only."""
    uri = resolve_uri(tracking.uri)
    if uri.startswith("http"):
        return f"open {uri}"
    return f"mlflow ui --backend-store-uri {uri} --host 127.0.0.1 --port 5000"


def run_url(tracking, exp_id: str, run_id: str) -> str:
    uri = resolve_uri(tracking.uri)
    base = uri.rstrip("/") if uri.startswith("http") else "http://127.0.0.1:5000"
    return f"{base}/#/experiments/{exp_id}/runs/{run_id}"


def log_skipped_rows(client: MlflowClient, run_id: str, skipped: list[tuple[int, str]]) -> None:
    """`data.on_bad_row=skip` drops rows; the run says how many (tag) and which (skipped_rows.csv)."""
    set_tags(client, run_id, {"fer.skipped_rows": len(skipped)})
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["line", "reason"])
    writer.writerows(skipped)
    client.log_text(run_id, out.getvalue(), "skipped_rows.csv")
