"""`hparams_search=optuna`: an Optuna study whose trials are the child runs of one sweep parent run."""

from __future__ import annotations

import math
import shutil

import optuna
import pytest
from helpers import call_fer, run_fer, store

FAST = ["data.n_train=160", "data.n_val=64", "data.n_test=64", "trainer.max_epochs=1", "trainer.num_sanity_val_steps=0",
        "trainer.progress_bar=false", "explain=none"]
SPACE = ("optim.lr", "optim.weight_decay", "model.dropout", "data.batch_size")


@pytest.mark.slow
def test_three_trials_are_child_runs_and_the_parent_records_the_best(tmp_path, empty_store):
    shutil.copy(empty_store, tmp_path / "mlflow.db")
    proc = call_fer("fer.train", "-m", "hparams_search=optuna", "hydra.sweeper.n_trials=3",
                    "hydra.sweeper.storage=sqlite:///optuna.db", "hydra.sweeper.study_name=search",
                    "optim.lr=tag(log,interval(1e-3,3e-3))", *FAST, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    client = store(tmp_path)
    runs = client.search_runs([client.get_experiment_by_name("fer").experiment_id])
    (parent,) = [r for r in runs if r.data.tags.get("fer.role") == "sweep"]
    pid = parent.info.run_id
    trials = [r for r in runs if r is not parent]
    assert len(trials) == 3 and parent.info.status == "FINISHED"
    assert all(r.info.status == "FINISHED" and r.data.tags["mlflow.parentRunId"] == pid for r in trials)

    sampled = [{k: float(r.data.params[k]) for k in SPACE} for r in trials]
    for values in sampled:
        assert 1e-3 <= values["optim.lr"] <= 3e-3  # the command line's range, not the yaml's
        assert 1e-6 <= values["optim.weight_decay"] <= 1e-2
        assert 0.0 <= values["model.dropout"] <= 0.6
        assert values["data.batch_size"] in (32, 64, 128, 256)
    for key in ("optim.lr", "optim.weight_decay", "model.dropout"):
        assert len({v[key] for v in sampled}) == 3, key

    best_val = {r.info.run_id: max(m.value for m in client.get_metric_history(r.info.run_id, "val_acc"))
                for r in trials}
    tags = parent.data.tags
    assert math.isclose(float(tags["fer.optuna.best_value"]), max(best_val.values()), rel_tol=1e-6)
    best = next(r for r in trials if r.info.run_id == tags["fer.optuna.best_run"])
    assert best_val[best.info.run_id] == max(best_val.values())
    assert {k: parent.data.params[f"best.{k}"] for k in SPACE} == {k: best.data.params[k] for k in SPACE}
    assert f"fer: optuna best trial {tags['fer.optuna.best_trial']}: value" in proc.stdout

    # the study kept in the storage given on the command line (current Optuna on SQLAlchemy 2), each trial
    # linked to its run, its value that run's best val acc
    study = optuna.load_study(study_name="search", storage=f"sqlite:///{tmp_path / 'optuna.db'}")
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.COMPLETE] * 3
    assert {t.user_attrs["mlflow_run_id"]: t.value for t in study.trials} == pytest.approx(best_val)


@pytest.mark.parametrize("override,expected", [
    ("hydra.sweeper.pruner=foo", "config key 'hydra.sweeper.pruner': expected one of none, median, hyperband, got "
                                 "'foo'"),
    ("hydra.sweeper.direction=up", "config key 'hydra.sweeper.direction': expected maximize or minimize"),
    ("hydra.sweeper.storage=postgresql+psycopg2://fer@127.0.0.1:1/none",
     "hydra.sweeper.storage=postgresql+psycopg2://fer@127.0.0.1:1/none: the study's database cannot be used"),
    ("hydra.sweeper.storage=postgresql+psycopg://fer@127.0.0.1:1/none",  # psycopg 3: its driver is not installed
     "hydra.sweeper.storage=postgresql+psycopg://fer@127.0.0.1:1/none: the study's database cannot be used (the "
     "Python driver postgresql+psycopg:// asks for is not installed; pip install it)"),
    ("hydra/launcher=slurm", "config key 'hydra/launcher': expected a launcher this machine can run: submitit_slurm "
                             "submits jobs with `sbatch`, which is not on PATH here"),
])
def test_a_bad_search_setting_is_one_line_before_any_run(tmp_path, empty_store, override, expected):
    """A setting the search cannot use, a study storage it cannot reach or a launcher this machine lacks: one line,
    and no parent run left FAILED for it."""
    shutil.copy(empty_store, tmp_path / "mlflow.db")
    proc = call_fer("fer.train", "-m", "hparams_search=optuna", override, *FAST, cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("fer: error: ")]
    assert len(errors) == 1 and errors[0].startswith(f"fer: error: {expected}"), proc.stderr
    client = store(tmp_path)
    assert client.search_runs([e.experiment_id for e in client.search_experiments()]) == []


@pytest.mark.slow
def test_a_slurm_sweep_on_a_machine_without_slurm_is_one_line_from_a_real_process(tmp_path):
    proc = run_fer("fer.train", "-m", "hydra/launcher=slurm", "model=cnn,dnn", *FAST, cwd=tmp_path, check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr + proc.stdout, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        "fer: error: config key 'hydra/launcher': expected a launcher this machine can run: submitit_slurm submits "
        "jobs with `sbatch`, which is not on PATH here (on a SLURM login node it is; hydra/launcher=slurm_local runs "
        "the same jobs on this machine), got 'slurm'"]
    assert not (tmp_path / "mlflow.db").exists()
