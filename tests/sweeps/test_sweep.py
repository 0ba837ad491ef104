"""A Hydra multirun as one MLflow sweep: parent run, nested child runs, comparison; parallel jobs via joblib."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import mlflow
import pytest
from helpers import artifact_bytes, assert_complete_run, faces, run_fer, store, write_fer_csv

from fer.runs.job import PARENT_FILE

pytestmark = pytest.mark.slow  # sweeps of several jobs

TINY = ["data.n_train=160", "data.n_val=64", "data.n_test=64", "trainer.max_epochs=2", "trainer.progress_bar=false",
        "explain=none"]


def test_ablation_sweep_of_four_jobs_on_two_parallel_workers(tmp_path):
    proc = run_fer("fer.train", "-m", "experiment=ablation", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
                   *TINY, "tracking.register=fer-ablation", "tracking.alias=best", cwd=tmp_path)
    client = store(tmp_path)
    exp = client.get_experiment_by_name("ablation")
    runs = client.search_runs([exp.experiment_id])
    parents = [r for r in runs if r.data.tags.get("fer.role") == "sweep"]
    assert len(parents) == 1 and len(runs) == 5
    parent = parents[0]
    pid = parent.info.run_id
    assert parent.info.status == "FINISHED" and pid in proc.stdout
    jobs = [r for r in runs if r is not parent]
    for run in jobs:
        assert run.data.tags["mlflow.parentRunId"] == pid
        assert_complete_run(client, run, epochs=2)
    assert {(r.data.params["norm.name"], r.data.params["aug.name"]) for r in jobs} == {
        ("none", "none"), ("none", "keras"), ("standardize", "none"), ("standardize", "keras")}
    # the multirun folder names its parent run
    (link,) = Path(tmp_path, "multirun").glob(f"*/*/{PARENT_FILE}")
    assert link.read_text().split()[0] == pid
    # the comparison: one row per job, numbers as MLflow holds them
    names = {a.path for a in client.list_artifacts(pid)}
    assert {"comparison.md", "comparison.csv", "comparison_accuracy.png", "comparison_val_acc.png"} <= names
    rows = list(csv.DictReader(io.StringIO(artifact_bytes(client, pid, "comparison.csv").decode())))
    by_run = {r.info.run_name: r for r in jobs}
    assert sorted(row["run"] for row in rows) == sorted(by_run)
    for row in rows:
        run = by_run[row["run"]]
        assert row["overrides"] == f"norm={run.data.params['norm.name']} aug={run.data.params['aug.name']}"
        assert abs(float(row["test_acc"]) - run.data.metrics["test_acc"]) < 1e-4
        best = max(m.value for m in client.get_metric_history(run.info.run_id, "val_acc"))
        assert abs(float(row["best_val_acc"]) - best) < 1e-4
        assert int(row["params"]) == int(run.data.params["params_total"]) and row["epochs"] == "2"
    assert "| norm=standardize aug=keras |" in artifact_bytes(client, pid, "comparison.md").decode()
    # the same table as MLflow shows tables, and the best job's model registered (one version, not one per job)
    mlflow.set_tracking_uri(client.tracking_uri)  # load_table searches the runs through the global URI
    table = client.load_table(exp.experiment_id, "comparison.json", run_ids=[pid])
    assert sorted(table["run"]) == sorted(by_run) and list(table.columns)[:2] == ["job", "run"]
    (version,) = client.search_model_versions("name='fer-ablation'")
    assert version.run_id == parent.data.tags["fer.best_run"] == client.get_model_version_by_alias(
        "fer-ablation", "best").run_id
    assert {r.info.run_id for r in jobs} == {m.source_run_id for m in client.search_logged_models([exp.experiment_id])}


def test_a_failing_job_leaves_the_parent_failed_not_running(tmp_path):
    """The basic launcher stops the sweep at a failing job without Hydra's multirun-end hook (the parent is closed
    as the process ends: a process, not call_fer)."""
    usages = ["Training"] * 120 + ["PublicTest"] * 40 + ["PrivateTest"] * 40
    good = write_fer_csv(tmp_path / "good.csv", faces(200), [i % 7 for i in range(200)], usages)
    gone = tmp_path / "gone.csv"  # valid as a setting; its job finds no file: a failure no check before it can see
    proc = run_fer("fer.train", "-m", "data=fer2013", f"data.path={good},{gone}", "trainer.max_epochs=2",
                   "trainer.progress_bar=false", "explain=none", cwd=tmp_path, check=False)
    assert proc.returncode != 0 and f"{gone}: no such file" in proc.stderr
    client = store(tmp_path)
    runs = client.search_runs([client.get_experiment_by_name("fer").experiment_id])
    (parent,) = [r for r in runs if r.data.tags.get("fer.role") == "sweep"]
    (child,) = [r for r in runs if r is not parent]
    assert parent.info.status == "FAILED" and child.info.status == "FINISHED"
    assert "comparison.csv" in {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert "aborted by a failing job" in proc.stdout
