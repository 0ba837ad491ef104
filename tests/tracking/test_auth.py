"""A tracking server that asks for credentials (MLflow's basic-auth app, started here on loopback): fer checks them
before anything trains, says which variables to set, and trains into the server once they are right."""

from __future__ import annotations

import pytest
from helpers import QUICK, MlflowServer, call_fer
from mlflow.tracking import MlflowClient

PASSWORD = "fer-test-password-1"
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("auth_server")]  # one worker starts the server
ADMIN = {"MLFLOW_TRACKING_USERNAME": "admin", "MLFLOW_TRACKING_PASSWORD": PASSWORD}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("auth")
    config = root / "basic_auth.ini"
    config.write_text(f"[mlflow]\ndefault_permission = READ\ndatabase_uri = sqlite:///{root / 'auth.db'}\n"
                      "admin_username = admin\nauthorization_function = "
                      "mlflow.server.auth:authenticate_request_basic_auth\n")
    env = {"MLFLOW_AUTH_CONFIG_PATH": str(config), "MLFLOW_AUTH_ADMIN_PASSWORD": PASSWORD,
           "MLFLOW_FLASK_SERVER_SECRET_KEY": "fer-test-secret"}
    with MlflowServer(root, app_name="basic-auth", env=env) as server:
        yield server


@pytest.mark.parametrize("creds,said", [
    ({}, "the server asks for credentials (HTTP 401) and none are set: export MLFLOW_TRACKING_USERNAME and "
         "MLFLOW_TRACKING_PASSWORD (or MLFLOW_TRACKING_TOKEN)"),
    ({**ADMIN, "MLFLOW_TRACKING_PASSWORD": "wrong"},
     "the server refused the credentials of MLFLOW_TRACKING_USERNAME='admin' (HTTP 401): check "
     "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD (or MLFLOW_TRACKING_TOKEN)"),
], ids=["none", "wrong"])
def test_missing_or_refused_credentials_stop_before_anything_trains(server, tmp_path, monkeypatch, creds, said):
    for key, value in creds.items():
        monkeypatch.setenv(key, value)
    proc = call_fer("fer.train", "tracking=server", f"tracking.uri={server.url}", *QUICK, cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [f"fer: error: tracking.uri {server.url}: {said}"]
    assert not list(tmp_path.glob("outputs/*/*/checkpoints/*")) and not (tmp_path / "mlflow-spool").exists()


def test_right_credentials_train_into_the_server(server, tmp_path, monkeypatch):
    for key, value in ADMIN.items():
        monkeypatch.setenv(key, value)
    proc = call_fer("fer.train", "tracking=server", f"tracking.uri={server.url}", *QUICK, "trainer.max_epochs=1",
                    "explain=none", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    client = MlflowClient(server.url)
    (run,) = client.search_runs([client.get_experiment_by_name("fer").experiment_id])
    assert run.info.status == "FINISHED" and "test_acc" in run.data.metrics
