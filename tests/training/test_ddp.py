"""`trainer=ddp` on CPU: two gloo processes train one MLflow run, whether Lightning launches them or torchrun
does; metrics cover every row once, synced across ranks, and only rank 0 writes (each epoch's metrics once, one
set of artifacts)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from helpers import QUICK, SLIM_CNN, run_fer, store

pytestmark = pytest.mark.slow  # two processes a run, three launchers

N_VAL, N_TEST = 161, 160  # odd: a padded share would count a row twice
ARGS = [*QUICK, *SLIM_CNN, f"data.n_val={N_VAL}", f"data.n_test={N_TEST}", "explain=none", "trainer=ddp",
        "trainer.accelerator=cpu", "trainer.devices=2", "trainer.precision=32-true"]


def torchrun(cwd, *args) -> subprocess.CompletedProcess:
    """`torchrun --standalone --nproc_per_node=2 -m fer.train <args>`: the ranks are torchrun's, not Lightning's."""
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                           "-m", "fer.train", *args], cwd=cwd, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


@pytest.mark.parametrize("launcher", ["lightning", "torchrun", "submitit"])
def test_two_processes_train_one_run(tmp_path, launcher):
    if launcher == "lightning":
        proc = run_fer("fer.train", *ARGS, cwd=tmp_path)
        assert "fer: 2 processes train run " in proc.stdout
    elif launcher == "torchrun":
        proc = torchrun(tmp_path, *ARGS)
        assert proc.stdout.count("finished: test_acc") == 1  # rank 0 says how it went; rank 1 says nothing
    else:  # a sweep's job of two tasks (submitit's local executor, as on SLURM with tasks_per_node=2)
        run_fer("fer.train", "-m", "hydra/launcher=slurm_local", "hydra.launcher.tasks_per_node=2", *ARGS,
                cwd=tmp_path, env={"OMP_NUM_THREADS": "1"})
    client = store(tmp_path)
    runs = client.search_runs([client.get_experiment_by_name("fer").experiment_id])
    (run,) = [r for r in runs if r.data.tags.get("fer.role") != "sweep"]
    assert run.info.status == "FINISHED"
    for key in ("train_loss", "train_acc", "val_loss", "val_acc", "lr"):
        assert [m.step for m in client.get_metric_history(run.info.run_id, key)] == [0, 1], key
    for m in client.get_metric_history(run.info.run_id, "val_acc"):  # a whole number of the 161 rows
        assert abs(m.value * N_VAL - round(m.value * N_VAL)) < 1e-3
    with open(client.download_artifacts(run.info.run_id, "confusion_matrix.json", str(tmp_path))) as f:
        counts = json.load(f)["counts"]
    assert sum(map(sum, counts)) == N_TEST
    assert run.data.metrics["test_acc"] == pytest.approx(sum(counts[i][i] for i in range(7)) / N_TEST)
    names = [a.path for a in client.list_artifacts(run.info.run_id)]
    assert len(names) == len(set(names)) and "curves.png" in names
