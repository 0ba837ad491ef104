"""Stopping a sweep as a whole and continuing it: Ctrl-C to a real joblib sweep, then the one command fer prints."""

from __future__ import annotations

import csv
import io
import json
import os
import shlex
import shutil
import signal
import subprocess
import time

import forked
import pytest
from helpers import SLIM_CNN, artifact_bytes, assert_complete_run, store

from fer.tracking.store import store_lock


@pytest.mark.slow
def test_ctrl_c_stops_a_joblib_sweep_killed_and_one_command_continues_it(tmp_path, empty_store):
    """Ctrl-C (SIGINT to the process group, as a terminal sends it) while the first two of four jobs train in
    two workers: exit 130, nothing left RUNNING, the jobs not started stay so, one command printed; that command
    resumes the killed jobs, runs the others, and finishes the parent with every job's row."""
    shutil.copy(empty_store, tmp_path / "mlflow.db")
    args = ["-m", "norm=none,standardize", "aug=none,keras", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
            *SLIM_CNN, "data.n_train=600", "data.n_val=96", "data.n_test=96", "trainer.max_epochs=3",
            "trainer.progress_bar=false", "explain=none"]
    sweep = forked.Command("fer.train", *args, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           start_new_session=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    client = store(tmp_path)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:  # both first jobs past their first epoch's checkpoint, one epoch to go
        assert sweep.poll() is None, sweep.communicate()
        with store_lock(f"sqlite:///{tmp_path / 'mlflow.db'}"):
            children = client.search_runs([e.experiment_id for e in client.search_experiments()],
                                          "tags.`fer.job` != ''")
            started = [c for c in children if any(m.step >= 1 for m in client.get_metric_history(c.info.run_id, "lr"))]
        if len(started) == 2:
            break
        time.sleep(0.2)
    os.killpg(sweep.pid, signal.SIGINT)
    out, err = sweep.communicate(timeout=300)
    assert sweep.returncode == 130, err
    runs = client.search_runs([client.get_experiment_by_name("fer").experiment_id])
    assert not [r for r in runs if r.info.status == "RUNNING"]
    (parent,) = [r for r in runs if r.data.tags.get("fer.role") == "sweep"]
    children = [r for r in runs if r is not parent]
    assert parent.info.status == "KILLED" and 2 <= len(children) < 4  # a third may have started as one finished
    assert {r.info.status for r in children} <= {"KILLED", "FINISHED"} and "Traceback" not in err, err
    assert "not started: the sweep was stopped" in out  # the jobs after the stop made no run
    (command,) = [line.removeprefix("fer: continue it with: ") for line in err.splitlines()
                  if line.startswith("fer: continue it with: ")]
    assert "resume it with" not in err and f"resume={parent.info.run_id}" in command

    python, dash_m, module, *rest = shlex.split(command)  # as a shell runs it
    assert (python, dash_m, module) == ("python", "-m", "fer.train"), command
    again = forked.run(module, *rest, cwd=tmp_path, env={**os.environ, "PYTHONUNBUFFERED": "1"}, timeout=300)
    assert again.returncode == 0, again.stderr
    runs = client.search_runs([client.get_experiment_by_name("fer").experiment_id])
    (parent,) = [r for r in runs if r.data.tags.get("fer.role") == "sweep"]
    children = [r for r in runs if r is not parent]
    assert parent.info.status == "FINISHED" and len(children) == 4
    for run in children:
        assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert_complete_run(client, run, epochs=3)  # a resumed job holds each epoch once
    rows = list(csv.DictReader(io.StringIO(artifact_bytes(client, parent.info.run_id, "comparison.csv").decode())))
    assert sorted(row["run"] for row in rows) == sorted(r.info.run_name for r in children)
    assert all(row["status"] == "FINISHED" for row in rows)
    table = json.loads(artifact_bytes(client, parent.info.run_id, "comparison.json"))  # replaced, not appended to
    assert sorted(row[table["columns"].index("run")] for row in table["data"]) == sorted(r.info.run_name
                                                                                        for r in children)
