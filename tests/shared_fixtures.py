"""Fixtures shared by the tests: one thread per xdist worker, a ready sqlite store, one shared cnn run, two
registered runs with their MLflow Models, and the real servers started once per session. A plugin that
conftest.py loads only where tests run (see there)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import torch
from filelock import FileLock
from helpers import (
    CNN_ARGS,
    QUICK,
    MlflowServer,
    Postgres,
    S3Server,
    call_fer,
    only_run,
    postgres_missing,
    run_fer,
    store,
)
from mlflow.tracking import MlflowClient

if os.environ.get("PYTEST_XDIST_WORKER"):
    # `pytest -n 2` (the default addopts) on 2 cores: one thread per worker and per process it starts, instead of
    # each taking every core and the two fighting over them.
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def empty_store(tmp_path_factory) -> Path:
    """An MLflow sqlite store with its tables made: a test copies it to `<cwd>/mlflow.db` instead of each
    run paying the ~6 s of schema migrations a new store costs."""
    path = tmp_path_factory.mktemp("empty_store") / "mlflow.db"
    MlflowClient(f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture(scope="session")
def cnn_run(tmp_path_factory, empty_store):
    """One default-config cnn run through the CLI, shortened; shared by the tests that inspect it, and made once
    for all xdist workers (the first to need it trains it, under a lock; the others read it)."""
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base  # one folder for all of this session
    cwd = shared / "cnn_run"
    with FileLock(str(shared / "cnn_run.lock")):
        if not (cwd / "proc.json").exists():
            cwd.mkdir(exist_ok=True)
            shutil.copy(empty_store, cwd / "mlflow.db")
            proc = run_fer("fer.train", *CNN_ARGS, cwd=cwd)
            (cwd / "proc.json").write_text(json.dumps([proc.returncode, proc.stdout, proc.stderr]))
    code, stdout, stderr = json.loads((cwd / "proc.json").read_text())
    client, run = only_run(cwd)
    return cwd, client, run, subprocess.CompletedProcess(["fer.train", *CNN_ARGS], code, stdout, stderr)


REGISTERED_RUN = [*QUICK, "explain=none", "tracking.log_model=true", "tracking.system_metrics_every_s=1"]


@pytest.fixture(scope="session")
def registered(tmp_path_factory, empty_store):
    """Two runs with their MLflow Models, registered as fer-cnn: the first with the alias champion (version 1), the
    second without system metrics (version 2). For the tests in xdist_group("registered"): one worker trains them."""
    cwd = tmp_path_factory.mktemp("registry")
    shutil.copy(empty_store, cwd / "mlflow.db")
    first = call_fer("fer.train", *REGISTERED_RUN, "tracking.register=fer-cnn", "tracking.alias=champion", cwd=cwd)
    second = call_fer("fer.train", *REGISTERED_RUN, "tracking.register=fer-cnn", "tracking.system_metrics=false",
                      "seed=1", cwd=cwd)
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    client = store(cwd)
    exp = client.get_experiment_by_name("fer")
    runs = sorted(client.search_runs([exp.experiment_id]), key=lambda r: r.info.start_time)
    return cwd, client, exp, runs, (first, second)


@pytest.fixture(scope="session")
def session_mlflow_server(tmp_path_factory) -> MlflowServer:
    with MlflowServer(tmp_path_factory.mktemp("mlflow_server")) as server:
        yield server


@pytest.fixture
def mlflow_server(session_mlflow_server) -> MlflowServer:
    """A plain `mlflow server` on loopback (sqlite, local artifacts), started once for the tests in
    xdist_group("mlflow_server"), each in its own experiment; started again (same port and store) if a test of
    tracking faults left it killed. The tests that need its auth app start their own."""
    if not session_mlflow_server.running():
        session_mlflow_server.start()
    return session_mlflow_server


@pytest.fixture(scope="session")
def team_store(tmp_path_factory):
    """A team's store on loopback: a private PostgreSQL cluster, moto's S3, and `mlflow server` on both (runs in
    PostgreSQL, artifacts proxied to the bucket); yields (postgres, s3, server). Skipped, saying why, where
    PostgreSQL cannot be started."""
    if why := postgres_missing():
        pytest.skip(why)
    with contextlib.ExitStack() as stack:  # whatever started is stopped, also when a later start fails
        pg = Postgres()
        stack.callback(pg.stop)
        pg.start()
        s3 = S3Server()
        stack.callback(s3.stop)
        s3.start()
        server = MlflowServer(tmp_path_factory.mktemp("team"), backend=pg.database("mlflow"),
                              artifacts=f"s3://{s3.bucket}/mlflow", env=s3.env)
        stack.callback(server.stop)
        server.start()
        yield pg, s3, server
