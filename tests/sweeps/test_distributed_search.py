"""One Optuna study searched by two sweeper processes at once (as from two machines): the study in PostgreSQL, every
run in a team MLflow server (PostgreSQL + S3). Each sweeper is one parent with its trials as children; a pruner stops
the trials that trail; the best trial is tagged; no run is lost or left RUNNING. A trial whose submitit job
(`hydra/launcher=slurm_local`) is killed, and one whose sweeper dies, run again."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time

import forked
import optuna
import pytest
from helpers import SLIM_CNN, store, submitit_tasks
from mlflow.tracking import MlflowClient

pytestmark = pytest.mark.slow  # sweepers, submitit's job processes, a killed worker, a dead sweeper

GOOD, BAD = 1e-3, 1e-7  # learning rates: ~0.25 val_acc after one epoch and ~0.37 after three, and chance (~0.15)
ORDER = [GOOD, GOOD, BAD, BAD]  # the good two finish first; the bad two meet a median to be pruned by
FIXED = {"optim.weight_decay": 1e-6, "model.dropout": 0.5, "data.batch_size": 32}
TRAIN = [*SLIM_CNN, "data.n_train=1000", "data.n_val=160", "data.n_test=160", "trainer.max_epochs=3",
         "trainer.progress_bar=false", "explain=none", "tracking.log_model=false", "tracking.system_metrics=false"]


@pytest.mark.xdist_group("team_store")  # with test_team_store.py: one worker starts the team's servers
def test_two_sweepers_share_one_postgres_study_with_pruning_tracked_in_the_team_store(team_store, tmp_path):
    pg, _, server = team_store
    study_url = pg.database("optuna")
    # the trials' parameters queued in this order, so that pruning has something to prune whatever the timing
    study = optuna.create_study(study_name="search", storage=study_url, direction="maximize")
    for lr in ORDER:
        study.enqueue_trial({"optim.lr": lr, **FIXED})
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1", "MLFLOW_TRACKING_URI": server.url}
    sweepers = [forked.Command(
        "fer.train", "-m", "hparams_search=optuna", f"hydra.sweep.dir={tmp_path / f'sweeper{k}'}",
        "hydra.sweeper.n_trials=2", f"hydra.sweeper.storage={study_url}", "hydra.sweeper.study_name=search",
        "hydra.sweeper.pruner=median", "hydra.sweeper.pruner_startup_trials=1", "hydra.sweeper.heartbeat_s=5",
        f"hydra.sweeper.seed={k}", "tracking=team", "tracking.experiment=search", *TRAIN,
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for k in range(2)]
    for proc in sweepers:
        out, err = proc.communicate(timeout=900)
        assert proc.returncode == 0, out + err

    study = optuna.load_study(study_name="search", storage=study_url)
    states = [t.state for t in study.trials]
    assert len(states) == 4 and optuna.trial.TrialState.RUNNING not in states
    assert states.count(optuna.trial.TrialState.PRUNED) >= 1
    assert study.best_trial.params["optim.lr"] == GOOD

    client = MlflowClient(server.url)
    exp = client.get_experiment_by_name("search")
    runs = client.search_runs([exp.experiment_id], max_results=100)
    parents = [r for r in runs if r.data.tags.get("fer.role") == "sweep"]
    trials = [r for r in runs if r not in parents]
    assert len(parents) == 2 and len(trials) == 4
    assert all(p.info.status == "FINISHED" for p in parents)
    for parent in parents:
        mine = [t for t in trials if t.data.tags["mlflow.parentRunId"] == parent.info.run_id]
        assert len(mine) == 2 and "comparison.csv" in {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {t.info.status for t in trials} <= {"FINISHED", "KILLED"}
    pruned = [t for t in trials if "fer.optuna.pruned" in t.data.tags]
    assert pruned and all(t.info.status == "KILLED" and float(t.data.params["optim.lr"]) == BAD for t in pruned)
    assert len(client.get_metric_history(pruned[0].info.run_id, "val_acc")) < 3  # it stopped early
    best = [t for t in trials if "fer.optuna.best" in t.data.tags]
    assert best and all(t.data.tags["fer.optuna.best"] == str(study.best_trial.number) for t in best)
    assert {t.data.params["optuna.trial"] for t in trials} == {str(n) for n in range(4)}


def test_a_trial_whose_worker_is_killed_runs_again_and_its_run_is_not_left_running(tmp_path, empty_store):
    """Optuna's RetryFailedTrialCallback: the killed trial's parameters are tried again by the next ask, in its
    place (one trial asked for: two jobs), here with the default journal storage in the sweep folder."""
    shutil.copy(empty_store, tmp_path / "mlflow.db")  # its tables made: this test's reads race no migration
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    proc = forked.Command(
        "fer.train", "-m", "hparams_search=optuna", "hydra/launcher=slurm_local",
        f"hydra.sweep.dir={tmp_path / 'sweep'}", "hydra.sweeper.n_trials=1", "hydra.sweeper.max_retry=1",
        "hydra.sweeper.study_name=retry", *TRAIN,
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while True:  # the first trial has trained an epoch: kill its worker as a lost node would
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        exp = store(tmp_path).get_experiment_by_name("fer")
        runs = store(tmp_path).search_runs([exp.experiment_id]) if exp else []
        if any(store(tmp_path).get_metric_history(r.info.run_id, "lr") for r in runs):
            break
        time.sleep(0.5)
    (task,) = submitit_tasks(proc.pid)
    task.send_signal(signal.SIGKILL)
    out, err = proc.communicate(timeout=600)
    assert "fer: optuna: trial 0 failed; it runs again" in out, out + err
    study = optuna.load_study(study_name="retry", storage=optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(tmp_path / "sweep" / "optuna.journal"))))
    first, retried = study.trials[0], study.trials[1]
    assert first.state == optuna.trial.TrialState.FAIL and retried.state == optuna.trial.TrialState.COMPLETE
    assert retried.params == first.params and retried.system_attrs["failed_trial"] == 0
    runs = store(tmp_path).search_runs([store(tmp_path).get_experiment_by_name("fer").experiment_id])
    assert "RUNNING" not in {r.info.status for r in runs}
    assert sorted(r.info.status for r in runs if r.data.tags.get("fer.role") != "sweep") == ["FAILED", "FINISHED"]
    (parent,) = [r for r in runs if r.data.tags.get("fer.role") == "sweep"]
    assert parent.info.status == "FINISHED"  # the failed attempt was run again: the search succeeded


def test_a_dead_sweepers_trial_is_failed_by_its_heartbeat_and_run_again_by_another(tmp_path, empty_store):
    """Sweeper A dies (kill -9) during its trial; its heartbeats stop, so sweeper B, on the same study, fails that
    trial, runs its parameters again (Optuna's RetryFailedTrialCallback) and closes A's orphaned run."""
    shutil.copy(empty_store, tmp_path / "mlflow.db")
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}

    def sweeper(name: str) -> list[str]:
        return ["-m", "hparams_search=optuna", f"hydra.sweep.dir={tmp_path / name}", "hydra.sweeper.n_trials=1",
                f"hydra.sweeper.storage={storage}", "hydra.sweeper.study_name=beat", "hydra.sweeper.heartbeat_s=1",
                "hydra.sweeper.max_retry=1", *TRAIN]

    a = forked.Command("fer.train", *sweeper("a"), cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while True:
        assert a.poll() is None and time.monotonic() < deadline
        exp = store(tmp_path).get_experiment_by_name("fer")
        runs = store(tmp_path).search_runs([exp.experiment_id]) if exp else []
        if any(store(tmp_path).get_metric_history(r.info.run_id, "lr") for r in runs):
            break
        time.sleep(0.5)
    a.kill()  # the sweeper and its in-process job, as a lost machine
    a.wait()
    time.sleep(3)  # longer than the grace period (twice the heartbeat)
    b = forked.run("fer.train", *sweeper("b"), cwd=tmp_path, env=env)
    assert b.returncode == 0, b.stdout + b.stderr
    assert "fer: optuna: trial 0 lost its sweeper (no heartbeat for 2 s); it runs again" in b.stdout
    study = optuna.load_study(study_name="beat", storage=storage)
    lost, again = study.trials
    assert lost.state == optuna.trial.TrialState.FAIL and again.state == optuna.trial.TrialState.COMPLETE
    assert again.params == lost.params and again.system_attrs["failed_trial"] == 0
    client = store(tmp_path)
    trials = [r for r in client.search_runs([client.get_experiment_by_name("fer").experiment_id])
              if r.data.tags.get("fer.role") != "sweep"]
    assert sorted((r.data.params["optuna.trial"], r.info.status) for r in trials) == [("0", "FAILED"),
                                                                                       ("1", "FINISHED")]
