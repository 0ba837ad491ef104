"""MLflow plumbing: where runs go, what a run records about itself, and how to open the UI on it.

fer owns each run's lifecycle (create, params, tags, terminate) through `MlflowClient`, and hands
the run id to Lightning's `MLFlowLogger` for the metrics, so later work can nest runs or resume one.
All writes go through one `fer.delivery.DeliveringClient` per store, so a store that goes away mid-run
does not stop training or lose what it was sent (`python -m fer.delivery replay <spool>` delivers it later).
"""

from __future__ import annotations

import csv
import fcntl
import io
import shlex
import subprocess
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from urllib.parse import urlsplit

from mlflow.entities import Param, RunTag
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.loggers import MLFlowLogger

from fer.delivery import DeliveringClient, unreachable, when_free
from fer.errors import FerError

PACKAGES = ("torch", "pytorch-lightning", "torchmetrics", "hydra-core", "mlflow", "kornia", "captum", "numpy")
PREFLIGHT_S = 5.0

_clients: dict[str, DeliveringClient] = {}


SQLITE = "sqlite:///"


def sqlite_path(uri: str) -> Path | None:
    """The database file of a sqlite URI (relative to the working directory unless absolute), else None."""
    return Path(uri[len(SQLITE):]) if uri.startswith(SQLITE) else None


def resolve_uri(uri: str) -> str:
    """Make a relative sqlite path absolute, so the store is the one in the starting directory."""
    path = sqlite_path(uri)
    return SQLITE + str(path.resolve()) if path is not None and not path.is_absolute() else uri


@contextmanager
def store_lock(uri: str):
    """Held around creating a sqlite store and an experiment in it: MLflow's schema migration of a fresh
    database and its get-or-create of an experiment break when several processes start together."""
    path = sqlite_path(uri)
    if path is None:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{path}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def preflight(uri: str) -> None:
    """Fail in seconds, before a run is made, when nothing answers at a tracking server."""
    why = unreachable(uri, timeout=PREFLIGHT_S)
    if why:
        url = urlsplit(uri)
        port = url.port or (443 if url.scheme == "https" else 80)
        raise FerError(f"tracking.uri {uri}: nothing answers there ({why}); start the server (mlflow server "
                       f"--host {url.hostname} --port {port}), fix tracking.uri, or track locally with tracking=local")


def delivering(uri: str) -> DeliveringClient:
    """This process's one client for the store at `uri` (resolved), so all writes to it keep their order."""
    if uri not in _clients:
        with store_lock(uri):  # MlflowClient opens the store, creating a fresh one's tables
            _clients[uri] = DeliveringClient(when_free(MlflowClient, tracking_uri=uri))
    return _clients[uri]


def client_for(uri: str) -> DeliveringClient:
    """The client for a tracking URI (`tracking.uri`); a server is checked first, so a dead one fails at once."""
    uri = resolve_uri(uri)
    if uri not in _clients and uri.startswith(("http://", "https://")):
        preflight(uri)
    return delivering(uri)


def experiment_id(client: MlflowClient, tracking) -> str:
    """The id of `tracking.experiment`, creating it (with artifacts under `tracking.artifact_root`) if new."""
    name = tracking.experiment
    with store_lock(client.tracking_uri):
        exp = client.get_experiment_by_name(name)
        if exp is not None:
            return exp.experiment_id
        location = Path(tracking.artifact_root).resolve().as_uri() if tracking.artifact_root else None
        try:
            return client.create_experiment(name, artifact_location=location)
        except MlflowException as e:  # another process made it first (a server has no lock of ours)
            if e.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
            return client.get_experiment_by_name(name).experiment_id


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


def git(*args: str) -> str | None:
    """A git command's output in fer's own checkout; None outside one (an installed wheel) or without git."""
    try:
        out = subprocess.run(["git", *args], cwd=Path(__file__).resolve().parent, capture_output=True, text=True,
                             timeout=5)
        return out.stdout.strip() if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def git_tags() -> dict[str, str]:
    """The commit, and whether tracked files differed from it: such a run cannot be re-run from the commit."""
    commit = git("rev-parse", "HEAD")
    if not commit:
        return {"mlflow.source.git.commit": "unknown"}
    changes = git("status", "--porcelain", "--untracked-files=no")
    return {"mlflow.source.git.commit": commit, "fer.git.dirty": "unknown" if changes is None else str(bool(changes))}


def provenance_tags(overrides: list[str]) -> dict[str, str]:
    """What re-running this run months later needs: the command (this job's overrides, also inside a
    multirun sweep), the code and the package versions."""
    tags = {"fer.command": shlex.join(["python", "-m", "fer.train", *overrides]), **git_tags()}
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
    """Lightning's MLFlowLogger on a run fer created: epoch-level metrics use the epoch as their step, they
    are written through the store's `DeliveringClient` (in order with fer's other writes), and the run is
    left open at the end of fit (fer terminates it after testing and artifacts)."""

    def __init__(self, experiment_name: str, tracking_uri: str, run_id: str):
        super().__init__(experiment_name=experiment_name, tracking_uri=tracking_uri, run_id=run_id)
        self._mlflow_client = delivering(tracking_uri)
        self._experiment_id = self._mlflow_client.get_run(run_id).info.experiment_id
        self._initialized = True  # Lightning would look the run up again at its first write

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
