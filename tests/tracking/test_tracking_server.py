"""`tracking=server`: a run tracked by a live `mlflow server` on loopback, artifacts included."""

from __future__ import annotations

import pytest
from helpers import MlflowServer, assert_complete_run, run_fer
from mlflow.tracking import MlflowClient


@pytest.fixture
def mlflow_server(tmp_path):
    with MlflowServer(tmp_path) as server:
        yield server.url, tmp_path


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
