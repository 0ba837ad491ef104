"""Stopping a sweep as a whole and continuing it: Ctrl-C to a real joblib sweep (the ablation, four jobs on two
workers), then the one command fer prints, which ends with the sweep an uninterrupted one would have left: every job
complete, one comparison, the best job's model registered once."""

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
from pathlib import Path

import forked
import mlflow
import pytest
from helpers import SLIM_CNN, artifact_bytes, assert_complete_run, store

from fer.runs.job import PARENT_FILE
from fer.tracking.store import store_lock


@pytest.mark.slow
def test_ctrl_c_stops_an_ablation_sweep_and_one_command_continues_it_to_a_complete_comparison(tmp_path,
                                                                                             empty_store):
    """Ctrl-C (SIGINT to the process group, as a terminal sends it) while the first two of four jobs train in
    two workers: exit 130, nothing left RUNNING, the jobs not started stay so, one command printed; that command
    resumes the killed jobs, runs the others, and finishes the parent with every job's row."""
    shutil.copy(empty_store, tmp_path / "mlflow.db")
    args = ["-m", "experiment=ablation", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", *SLIM_CNN,
            "data.n_train=600", "data.n_val=96", "data.n_test=96", "trainer.max_epochs=3",
            "trainer.progress_bar=false", "explain=none", "tracking.register=fer-ablation", "tracking.alias=best"]
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
    runs = client.search_runs([client.get_experiment_by_name("ablation").experiment_id])
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
    runs = client.search_runs([client.get_experiment_by_name("ablation").experiment_id])
    (parent,) = [r for r in runs if r.data.tags.get("fer.role") == "sweep"]
    children = [r for r in runs if r is not parent]
    assert parent.info.status == "FINISHED" and len(children) == 4
    for run in children:
        assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert_complete_run(client, run, epochs=3)  # a resumed job holds each epoch once
    assert {(r.data.params["norm.name"], r.data.params["aug.name"]) for r in children} == {
        ("none", "none"), ("none", "keras"), ("standardize", "none"), ("standardize", "keras")}
    pid = parent.info.run_id
    assert {link.read_text().split()[0] for link in Path(tmp_path, "multirun").glob(f"*/*/{PARENT_FILE}")} == {pid}
    # the comparison: one row per job, numbers as MLflow holds them, replaced by the continuing command
    assert {"comparison.md", "comparison.csv", "comparison_accuracy.png", "comparison_val_acc.png"} <= {
        a.path for a in client.list_artifacts(pid)}
    rows = list(csv.DictReader(io.StringIO(artifact_bytes(client, pid, "comparison.csv").decode())))
    by_run = {r.info.run_name: r for r in children}
    assert sorted(row["run"] for row in rows) == sorted(by_run)
    for row in rows:
        run = by_run[row["run"]]
        assert row["status"] == "FINISHED" and row["epochs"] == "3"
        assert row["overrides"] == f"norm={run.data.params['norm.name']} aug={run.data.params['aug.name']}"
        assert abs(float(row["test_acc"]) - run.data.metrics["test_acc"]) < 1e-4
        best = max(m.value for m in client.get_metric_history(run.info.run_id, "val_acc"))
        assert abs(float(row["best_val_acc"]) - best) < 1e-4
        assert int(row["params"]) == int(run.data.params["params_total"])
    assert "| norm=standardize aug=keras |" in artifact_bytes(client, pid, "comparison.md").decode()
    table = json.loads(artifact_bytes(client, pid, "comparison.json"))  # replaced, not appended to
    assert sorted(row[table["columns"].index("run")] for row in table["data"]) == sorted(by_run)
    mlflow.set_tracking_uri(client.tracking_uri)  # load_table searches the runs through the global URI
    loaded = client.load_table(parent.info.experiment_id, "comparison.json", run_ids=[pid])
    assert sorted(loaded["run"]) == sorted(by_run) and list(loaded.columns)[:2] == ["job", "run"]
    # the best job's model registered once for the sweep (not once a job, nor once a command)
    (version,) = client.search_model_versions("name='fer-ablation'")
    assert version.run_id == parent.data.tags["fer.best_run"] == client.get_model_version_by_alias(
        "fer-ablation", "best").run_id
    assert {r.info.run_id for r in children} == {
        m.source_run_id for m in client.search_logged_models([parent.info.experiment_id])}
