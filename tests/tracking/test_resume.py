"""Runs that end early: signals leave a KILLED run and a resume command, kill -9 then resume= continues into
the same run with each epoch's metrics once, a diverging loss fails the run naming the step."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import forked
import pytest
from helpers import QUICK, SLIM_CNN, call_fer, only_run, store, tamper

from fer.tracking.store import store_lock

EPOCHS = 3
# Epochs long enough (about 30 batches, seconds) that a signal lands inside one.
LONG = [*SLIM_CNN, "data.n_train=2000", "data.n_val=160", "data.n_test=160", f"trainer.max_epochs={EPOCHS}",
        "trainer.progress_bar=false", "explain=none"]
CURVES = ("train_loss", "train_acc", "val_loss", "val_acc", "val_f1", "lr")


def start(cwd, *args) -> forked.Command:
    """`python -m fer.train <args>` as a shell starts it in the foreground: Ctrl-C not ignored, whatever the test
    process (an xdist worker that ran a sweep's job in-process) does with it."""
    return forked.Command("fer.train", *args, cwd=cwd, env={**os.environ, "PYTHONUNBUFFERED": "1"},
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def wait_for_epoch(proc: forked.Command, cwd, epoch: int) -> str:
    """Block until the run holds every metric of `epoch` (the lr of an epoch is logged last); its run id."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        if (cwd / "mlflow.db").exists():
            with store_lock(f"sqlite:///{cwd / 'mlflow.db'}"):  # not while the training process makes its tables
                client = store(cwd)
                runs = [r for e in client.search_experiments() for r in client.search_runs([e.experiment_id])]
            if runs and any(m.step >= epoch for m in client.get_metric_history(runs[0].info.run_id, "lr")):
                return runs[0].info.run_id
        time.sleep(0.3)
    raise AssertionError("no epoch finished in time")


def assert_each_epoch_once(client, run_id: str) -> None:
    for key in CURVES:
        steps = sorted(m.step for m in client.get_metric_history(run_id, key))
        assert steps == list(range(EPOCHS)), (key, steps)


@pytest.mark.slow
def test_kill_9_mid_epoch_then_resume_elsewhere_continues_the_same_run_from_the_store(tmp_path, empty_store):
    """Killed, then resumed from another folder where no local checkpoint exists (another machine that reaches
    the store): last.ckpt and the best checkpoint come from the run's artifacts, into the same run."""
    shutil.copy(empty_store, tmp_path / "mlflow.db")
    proc = start(tmp_path, *LONG)
    run_id = wait_for_epoch(proc, tmp_path, 0)
    time.sleep(0.3)  # inside epoch 1: its checkpoint does not exist yet
    proc.kill()
    proc.wait()
    client, run = only_run(tmp_path)
    assert run.info.status == "RUNNING"  # nobody could close it: resume must
    assert {a.path for a in client.list_artifacts(run_id, "checkpoints")} == {"checkpoints/best-00.ckpt",
                                                                             "checkpoints/last.ckpt"}
    shutil.rmtree(tmp_path / "outputs")  # the machine it ran on is gone
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    uri = f"tracking.uri=sqlite:///{tmp_path / 'mlflow.db'}"
    resumed = call_fer("fer.train", f"resume={run_id}", uri, cwd=elsewhere)
    assert resumed.returncode == 0, resumed.stderr
    assert f"fetched run {run_id}'s checkpoints/last.ckpt and best-00.ckpt" in resumed.stdout
    assert "resuming run" in resumed.stdout and "last.ckpt" in resumed.stdout
    client, run = only_run(tmp_path)
    assert run.info.run_id == run_id and run.info.status == "FINISHED"
    assert_each_epoch_once(client, run_id)
    assert "test_acc" in run.data.metrics and run.data.tags["fer.checkpoint"].startswith("checkpoints/best-")
    # a resumed run keeps its config; a finished one only trains on for more epochs; an unknown id is named
    for args, key in (([f"resume={run_id}", "optim.lr=0.5"], "optim.lr"), ([f"resume={run_id}"], "trainer.max_epochs"),
                      (["resume=nosuchrun"], "resume")):
        proc = call_fer("fer.train", *args, cwd=tmp_path)  # refused before anything starts: no process needed
        assert proc.returncode == 2 and f"config key '{key}'" in proc.stderr, proc.stderr
    assert only_run(tmp_path)[1].info.end_time == run.info.end_time


@pytest.mark.slow
@pytest.mark.parametrize(("sig", "cause", "code"), [(signal.SIGTERM, "SIGTERM", 143), (signal.SIGINT, "Ctrl-C", 130)])
def test_signal_ends_the_run_killed_with_the_resume_command(tmp_path, empty_store, sig, cause, code):
    shutil.copy(empty_store, tmp_path / "mlflow.db")
    proc = start(tmp_path, *LONG)
    run_id = wait_for_epoch(proc, tmp_path, 0)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err
    client, run = only_run(tmp_path)
    assert run.info.status == "KILLED"
    assert f"KILLED by {cause}; last checkpoint: " in err and "last.ckpt" in err
    assert f"resume it with: python -m fer.train resume={run_id}" in err
    if sig == signal.SIGTERM:  # and `resume=last` finds it
        assert call_fer("fer.train", "resume=last", cwd=tmp_path).returncode == 0
        client, run = only_run(tmp_path)
        assert run.info.status == "FINISHED"
        assert_each_epoch_once(client, run_id)


@pytest.mark.slow
def test_sigterm_while_explanations_render_ends_the_run_at_once_keeping_what_was_drawn(tmp_path, empty_store):
    """After testing, a filter ascent far too long to finish obeys SIGTERM at its next step: exit 143, the run
    KILLED with its test metrics and the saliency figures already drawn."""
    shutil.copy(empty_store, tmp_path / "mlflow.db")
    proc = start(tmp_path, *SLIM_CNN, "data.n_train=256", "data.n_val=64", "data.n_test=64", "trainer.max_epochs=1",
                 "trainer.progress_bar=false", "explain.filters.steps=10000000")
    deadline = time.monotonic() + 300
    while not list(tmp_path.glob("mlruns/**/saliency/*.png")):  # the saliency figures are stored: the ascent next
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.3)
    time.sleep(1)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143 and "Traceback" not in err, err
    client, run = only_run(tmp_path)
    assert run.info.status == "KILLED" and "test_acc" in run.data.metrics and "KILLED by SIGTERM" in err
    assert "saliency/saliency.png" in {a.path for a in client.list_artifacts(run.info.run_id, "saliency")}
    assert not client.list_artifacts(run.info.run_id, "filters")


def test_non_finite_loss_fails_the_run_naming_the_step(tmp_path, empty_store):
    shutil.copy(empty_store, tmp_path / "mlflow.db")
    proc = call_fer("fer.train", *QUICK, "explain=none", "norm=none", "optim=sgd", "optim.lr=1e6", cwd=tmp_path)
    assert proc.returncode == 2
    (line,) = [x for x in proc.stderr.splitlines() if x.startswith("fer: error:")]
    assert "training loss became non-finite at step" in line and "(epoch 0)" in line and "norm=standardize" in line
    client, run = only_run(tmp_path)
    assert run.info.status == "FAILED"
    error = client.download_artifacts(run.info.run_id, "error.txt", str(tmp_path))
    assert "NonFiniteLoss" in open(error).read()


def test_a_foreign_last_checkpoint_is_refused_before_resuming(tmp_path, empty_store):
    shutil.copy(empty_store, tmp_path / "mlflow.db")
    assert call_fer("fer.train", *QUICK, "trainer.max_epochs=1", "explain=none", cwd=tmp_path).returncode == 0
    client, run = only_run(tmp_path)
    last = Path(run.data.tags["fer.checkpoint_dir"]) / "last.ckpt"
    tamper(last, tmp_path / "payload-ran")
    proc = call_fer("fer.train", f"resume={run.info.run_id}", "trainer.max_epochs=2", cwd=tmp_path)
    assert proc.returncode == 2 and not (tmp_path / "payload-ran").exists()
    assert proc.stderr.strip().splitlines()[-1] == (
        f"fer: error: run {run.info.run_id}: its last checkpoint {last} holds objects other than tensors, so it is "
        "not a checkpoint fer wrote; nothing in it was run: replace it with a trusted copy, or train the run again")
    assert client.get_run(run.info.run_id).info.status == "FINISHED"  # what was recorded stays as it was


def test_a_resume_whose_checkpoints_were_deleted_says_so(tmp_path, empty_store):
    """The checkpoint folder and the store's copies deleted: the line says what is missing, not a setting the
    run never changed."""
    shutil.copy(empty_store, tmp_path / "mlflow.db")
    assert call_fer("fer.train", *QUICK, "trainer.max_epochs=1", "explain=none", cwd=tmp_path).returncode == 0
    client, run = only_run(tmp_path)
    folder = Path(run.data.tags["fer.checkpoint_dir"])
    shutil.rmtree(folder)
    shutil.rmtree(Path(run.info.artifact_uri.removeprefix("file://")) / "checkpoints")
    proc = call_fer("fer.train", f"resume={run.info.run_id}", "trainer.max_epochs=2", cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (
        f"fer: error: run {run.info.run_id}: its last checkpoint {folder / 'last.ckpt'} is not there, and its artifact "
        "store holds no checkpoints/last.ckpt either (deleted?); the run logged epochs, so starting over would log "
        "them twice: start a new run instead")
    assert client.get_run(run.info.run_id).info.status == "FINISHED"
