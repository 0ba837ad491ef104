"""`tracking=server`: a run tracked by a live `mlflow server` on loopback, artifacts included."""

from __future__ import annotations

import pytest
from helpers import assert_complete_run, call_fer
from mlflow.tracking import MlflowClient


@pytest.mark.slow
@pytest.mark.xdist_group("mlflow_server")  # the session's server, which the tracking faults kill and restart
def test_run_tracked_by_a_server(mlflow_server, tmp_path):
    url = mlflow_server.url
    proc = call_fer("fer.train", "tracking=server", f"tracking.uri={url}", "tracking.experiment=served",
                    "data.n_train=320", "data.n_val=96", "data.n_test=96", "trainer.max_epochs=1",
                    "trainer.progress_bar=false", "explain=none", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    client = MlflowClient(url)
    (run,) = client.search_runs([client.get_experiment_by_name("served").experiment_id])
    assert_complete_run(client, run, epochs=1)  # artifacts downloaded through the server
    assert f"{url}/#/experiments/" in proc.stdout
    assert all(line.startswith("fer:") for line in proc.stdout.splitlines()), proc.stdout  # not MLflow's own links
    assert any(mlflow_server.artifacts.rglob("confusion_matrix.png")) and not (tmp_path / "mlruns").exists()
