"""A team's store, started by the test on loopback: a private PostgreSQL cluster, moto's S3 endpoint, and
`mlflow server` on both (runs in PostgreSQL, artifacts proxied to S3). A run reaches it through `tracking=team`
(MLFLOW_TRACKING_URI), and when the server is killed and restarted mid-run the run completes with nothing lost."""

from __future__ import annotations

import os
import subprocess
import threading
import time

import forked
import pytest
from helpers import composed
from mlflow.tracking import MlflowClient

from fer.data.load import load_splits
from fer.tracking.lineage import dataset_inputs, log_dataset_inputs

EPOCHS = 3
LONG = ["data.n_train=2000", "data.n_val=160", "data.n_test=160", f"trainer.max_epochs={EPOCHS}",
        "trainer.progress_bar=false", "explain=none", "tracking.log_model=true", "tracking.system_metrics=false"]
CURVES = ("train_loss", "train_acc", "val_loss", "val_acc", "val_f1", "lr")


def wait_for_epoch(client: MlflowClient, proc: forked.Command, epoch: int, experiment: str) -> str:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        exp = client.get_experiment_by_name(experiment)
        runs = client.search_runs([exp.experiment_id]) if exp else []
        if runs and any(m.step >= epoch for m in client.get_metric_history(runs[0].info.run_id, "lr")):
            return runs[0].info.run_id
        time.sleep(0.5)
    raise AssertionError("no epoch finished in time")



@pytest.mark.slow
@pytest.mark.xdist_group("team_store")  # with the distributed search: one worker starts the servers
def test_a_run_survives_the_team_server_going_down_and_lands_whole_in_postgres_and_s3(team_store, tmp_path):
    _, s3, server = team_store
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "MLFLOW_TRACKING_URI": server.url}
    proc = forked.Command("fer.train", "tracking=team", "tracking.experiment=team-fault", *LONG, cwd=tmp_path, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    client = MlflowClient(server.url)
    run_id = wait_for_epoch(client, proc, 0, "team-fault")
    server.kill()
    time.sleep(3)  # an epoch's metrics and checkpoint copies meet no server
    server.start()
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED" and "test_acc" in run.data.metrics
    for key in CURVES:
        assert sorted(m.step for m in client.get_metric_history(run_id, key)) == list(range(EPOCHS)), key
    names = {a.path for a in client.list_artifacts(run_id)}
    assert {"confusion_matrix.json", "curves.png", "checkpoints"} <= names
    assert {a.path for a in client.list_artifacts(run_id, "checkpoints")} >= {"checkpoints/last.ckpt"}
    keys = s3.keys()  # the server proxied every artifact into the bucket
    assert any(k.endswith(f"{run_id}/artifacts/checkpoints/last.ckpt") for k in keys), keys[:20]
    assert any(k.endswith("model.pt2") or "/model/" in k for k in keys)
    assert client.search_logged_models([run.info.experiment_id])


def log_at_once(client: MlflowClient, run_ids: list[str], inputs) -> list[Exception]:
    """Each run logs `inputs` through fer, all released at the same moment; what failed."""
    together, failures = threading.Barrier(len(run_ids)), []

    def log(run_id):
        together.wait()
        try:
            log_dataset_inputs(client, run_id, inputs)
        except Exception as e:  # noqa: BLE001 (collected for the assert, which names it)
            failures.append(e)

    threads = [threading.Thread(target=log, args=(run_id,)) for run_id in run_ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return failures


@pytest.mark.slow
@pytest.mark.xdist_group("team_store")
def test_runs_starting_together_on_one_data_set_all_log_it_as_their_input(team_store):
    """The parallel jobs of a sweep log the same splits at the same moment: MLflow's check-then-insert of a new
    dataset clashes on PostgreSQL's key for all but one of them (about one call in four here), which fer makes again."""
    _, _, server = team_store
    client = MlflowClient(server.url)
    exp = client.create_experiment("same-data")
    for seed in range(5):  # a fresh data set each round: a clash needs a dataset nobody has made yet
        cfg = composed("data.n_train=70", "data.n_val=14", "data.n_test=14", f"data.seed={seed}")
        inputs = dataset_inputs(load_splits(cfg.data), cfg.data)
        run_ids = [client.create_run(exp).info.run_id for _ in range(4)]
        failures = log_at_once(client, run_ids, inputs)
        assert not failures, failures
        for run_id in run_ids:
            logged = client.get_run(run_id).inputs.dataset_inputs
            assert sorted(i.dataset.digest for i in logged) == sorted(i.dataset.digest for i in inputs)
