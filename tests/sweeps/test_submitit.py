"""A sweep through Hydra's submitit launcher (`hydra/launcher=slurm_local`: submitit's local executor, each job its
own process, as on SLURM): still one MLflow parent with its children and comparison, and a job preempted by
submitit's signal (SIGUSR2) is requeued and resumes into the same run, each epoch once."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time

import forked
import pytest
from helpers import SLIM_CNN, store, submitit_tasks

pytestmark = pytest.mark.slow  # a sweep of job processes, one preempted and requeued

EPOCHS = 3
LONG = [*SLIM_CNN, "data.n_train=2000", "data.n_val=160", "data.n_test=160", f"trainer.max_epochs={EPOCHS}",
        "trainer.progress_bar=false", "explain=none", "tracking.log_model=false", "tracking.system_metrics=false"]
CURVES = ("train_loss", "train_acc", "val_loss", "val_acc", "lr")


def children_with_an_epoch(client) -> list:
    exp = client.get_experiment_by_name("fer")
    runs = client.search_runs([exp.experiment_id], "tags.`mlflow.parentRunId` != ''") if exp else []
    return [r for r in runs if client.get_metric_history(r.info.run_id, "lr")]


def test_a_submitit_sweep_is_one_parent_and_a_preempted_job_resumes_into_its_run(tmp_path, empty_store):
    shutil.copy(empty_store, tmp_path / "mlflow.db")  # its tables made: this test's reads race no migration
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    proc = forked.Command("fer.train", "-m", "hydra/launcher=slurm_local", *LONG, "optim.lr=0.001,0.002",
                          cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while len(children_with_an_epoch(store(tmp_path))) < 2:
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.5)
    tasks = submitit_tasks(proc.pid)
    assert len(tasks) == 2, tasks
    tasks[0].send_signal(signal.SIGUSR2)  # what SLURM sends (through submitit) before preempting or timing out
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, out + err
    client = store(tmp_path)
    exp = client.get_experiment_by_name("fer")
    (parent,) = client.search_runs([exp.experiment_id], "tags.`fer.role` = 'sweep'")
    assert parent.info.status == "FINISHED"
    assert "comparison.csv" in {a.path for a in client.list_artifacts(parent.info.run_id)}
    kids = client.search_runs([exp.experiment_id], f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")
    assert len(kids) == 2 and {k.info.status for k in kids} == {"FINISHED"}
    preempted = [k for k in kids if k.data.tags.get("fer.preempted")]
    assert len(preempted) == 1 and preempted[0].data.tags["fer.preempted"] == "1"
    for kid in kids:
        for key in CURVES:
            steps = sorted(m.step for m in client.get_metric_history(kid.info.run_id, key))
            assert steps == list(range(EPOCHS)), (kid.info.run_name, key, steps)
