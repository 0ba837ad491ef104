"""`tracking=server`: a run tracked by a live `mlflow server` on loopback, artifacts included."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request

import pytest
from conftest import run_fer
from mlflow.tracking import MlflowClient
from test_train_cli import assert_complete_run


@pytest.fixture
def mlflow_server(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
                             "--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}",
                             "--artifacts-destination", str(tmp_path / "server-artifacts")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                if urllib.request.urlopen(f"{url}/health", timeout=1).status == 200:
                    break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("mlflow server did not come up in 60 s")
        yield url, tmp_path
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_run_tracked_by_a_server(mlflow_server):
    url, root = mlflow_server
    work = root / "work"
    work.mkdir()
    proc = run_fer("fer.train", "tracking=server", f"tracking.uri={url}", "data.n_train=320", "data.n_val=96",
                   "data.n_test=96", "trainer.max_epochs=1", "trainer.progress_bar=false", "explain=none", cwd=work)
    client = MlflowClient(url)
    (run,) = client.search_runs([client.get_experiment_by_name("fer").experiment_id])
    assert_complete_run(client, run, epochs=1)  # artifacts downloaded through the server
    assert f"{url}/#/experiments/" in proc.stdout
    assert any((root / "server-artifacts").rglob("confusion_matrix.png")) and not (work / "mlruns").exists()
