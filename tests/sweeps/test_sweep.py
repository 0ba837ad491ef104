"""A Hydra multirun as one MLflow sweep whose job fails: the parent is FAILED, not left RUNNING (the ablation on
parallel joblib workers, its comparison and registration: test_sweep_stop.py, where it is stopped and continued)."""

from __future__ import annotations

import shutil

import pytest
from helpers import faces, run_fer, store, write_fer_csv

pytestmark = pytest.mark.slow  # sweeps of several jobs


def test_a_failing_job_leaves_the_parent_failed_not_running(tmp_path, empty_store):
    """The basic launcher stops the sweep at a failing job without Hydra's multirun-end hook (the parent is closed
    as the process ends: a process, not call_fer)."""
    shutil.copy(empty_store, tmp_path / "mlflow.db")
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
