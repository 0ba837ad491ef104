"""The tracking store: its URI, one client per store for this process, creating experiments and runs safely
when several processes start together, and how to open the UI on a run.

All writes go through one `DeliveringClient` per store, so a store that goes away mid-run does not stop
training or lose what it was sent (`python -m fer.delivery replay <spool>` delivers it later).
"""

from __future__ import annotations

import fcntl
import shlex
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import requests
from mlflow.entities import Param, RunTag
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from mlflow.tracking._tracking_service.utils import get_default_host_creds
from mlflow.utils.rest_utils import http_request

from fer.errors import FerError
from fer.tracking import tags
from fer.tracking.delivering_client import DeliveringClient
from fer.tracking.retry import made_meanwhile, quiet_http_retries, unreachable, when_free

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
    """Fail in seconds, before a run is made, when nothing answers at a tracking server or it refuses this
    process's credentials (its /health answers without any, so a read that needs them is asked as well)."""
    why = unreachable(uri, timeout=PREFLIGHT_S)
    if why:
        url = urlsplit(uri)
        port = url.port or (443 if url.scheme == "https" else 80)
        raise FerError(f"tracking.uri {uri}: nothing answers there ({why}); start the server (mlflow server "
                       f"--host {url.hostname} --port {port}), fix tracking.uri, or track locally with tracking=local")
    creds = get_default_host_creds(uri)  # MLflow's own reading of MLFLOW_TRACKING_USERNAME/_PASSWORD/_TOKEN
    try:
        answer = http_request(creds, "/api/2.0/mlflow/experiments/search", "POST", json={"max_results": 1},
                              max_retries=0, timeout=PREFLIGHT_S, raise_on_status=False)
    except (OSError, MlflowException, requests.RequestException):
        return  # what does not answer here fails where the run writes, and is kept there
    if answer.status_code == 401:
        given = (f"the credentials of MLFLOW_TRACKING_USERNAME={creds.username!r}" if creds.username
                 else "the token in MLFLOW_TRACKING_TOKEN" if creds.token else None)
        if given is None:
            raise FerError(f"tracking.uri {uri}: the server asks for credentials (HTTP 401) and none are set: export "
                           "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD (or MLFLOW_TRACKING_TOKEN)")
        raise FerError(f"tracking.uri {uri}: the server refused {given} (HTTP 401): check MLFLOW_TRACKING_USERNAME "
                       "and MLFLOW_TRACKING_PASSWORD (or MLFLOW_TRACKING_TOKEN)")
    if answer.status_code == 403:
        raise FerError(f"tracking.uri {uri}: user {creds.username or '(token)'} may not read experiments there "
                       "(HTTP 403): ask the server's admin for permission, or track elsewhere with tracking.uri")


def delivering(uri: str) -> DeliveringClient:
    """This process's one client for the store at `uri` (resolved), so all writes to it keep their order."""
    if uri not in _clients:
        quiet_http_retries()
        with store_lock(uri):  # MlflowClient opens the store, creating a fresh one's tables
            _clients[uri] = DeliveringClient(when_free(MlflowClient, tracking_uri=uri))
    return _clients[uri]


def client_for(uri: str) -> DeliveringClient:
    """The client for a tracking URI (`tracking.uri`); a server is checked first, so a dead one fails at once."""
    uri = resolve_uri(uri)
    if uri not in _clients and uri.startswith(("http://", "https://")):
        preflight(uri)
    return delivering(uri)


def check_server(uri: str) -> None:
    """Fail now when a tracking server does not answer or refuses this process (a local store is made later,
    only once the data has been read)."""
    if resolve_uri(uri).startswith(("http://", "https://")):
        client_for(uri)


def experiment_id(client: MlflowClient, tracking) -> str:
    """The id of `tracking.experiment`, creating it (with artifacts under `tracking.artifact_root`) if new."""
    name = tracking.experiment
    with store_lock(client.tracking_uri):
        exp = client.get_experiment_by_name(name)
        if exp is not None:
            return exp.experiment_id
        location = Path(tracking.artifact_root).resolve().as_uri() if tracking.artifact_root else None
        try:
            return client.create_experiment(name, artifact_location=location,
                                            tags={tags.EXPERIMENT_KIND: tags.MODEL_TRAINING})
        except MlflowException as e:  # another process made it first (a server has no lock of ours)
            if not made_meanwhile(e):
                raise
            return client.get_experiment_by_name(name).experiment_id


def start_run(client: MlflowClient, exp_id: str, run_name: str, params: dict[str, object],
              tags: dict[str, str]) -> str:
    run = client.create_run(exp_id, run_name=run_name, tags=tags)
    items = [Param(k, str(v)) for k, v in params.items()]
    for i in range(0, len(items), 100):
        client.log_batch(run.info.run_id, params=items[i:i + 100])
    return run.info.run_id


def set_tags(client: MlflowClient, run_id: str, tags: dict[str, str]) -> None:
    client.log_batch(run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])


def artifact_bytes(client, run_id: str, path: str | None = None) -> dict[str, int]:
    """The bytes a run's artifacts occupy in its store, by top-level folder (or file)."""
    sizes: dict[str, int] = {}
    for item in client.list_artifacts(run_id, path):
        top = item.path.split("/")[0]
        held = sum(artifact_bytes(client, run_id, item.path).values()) if item.is_dir else item.file_size or 0
        sizes[top] = sizes.get(top, 0) + held
    return sizes


def megabytes(size: int) -> str:
    return f"{size / 1e6:,.1f} MB"


def ui_command(tracking) -> str:
    """The command that opens the MLflow UI on this store, bound to loopback only."""
    uri = resolve_uri(tracking.uri)
    if uri.startswith("http"):
        return f"open {uri}"
    return f"mlflow ui --backend-store-uri {uri} --host 127.0.0.1 --port 5000"


def report_command(tracking, sweep_id: str) -> str:
    """The command that writes the report of a sweep tracked in this store (fer/report.py)."""
    uri = resolve_uri(tracking.uri)
    where = "" if uri == resolve_uri("sqlite:///mlflow.db") else f" --uri {shlex.quote(uri)}"
    return f"python -m fer.report {sweep_id}{where}"


UI_MODEL_TRAINING = "workflowType=machine_learning"  # the UI's own switch; its default side is GenAI


def run_url(tracking, exp_id: str, run_id: str) -> str:
    """The run's page on the UI's model-training side. MLflow 3.17's UI takes the side from this URL parameter
    (else from the browser's last choice, GenAI on a new one); the experiment's `mlflow.experimentKind` tag is
    what UIs without that switch read."""
    uri = resolve_uri(tracking.uri)
    base = uri.rstrip("/") if uri.startswith("http") else "http://127.0.0.1:5000"
    return f"{base}/#/experiments/{exp_id}/runs/{run_id}?{UI_MODEL_TRAINING}"


