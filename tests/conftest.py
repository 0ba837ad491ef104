"""Fixtures shared by the tests: one thread per xdist worker, a ready sqlite store, one shared cnn run."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from helpers import CNN_ARGS, only_run, run_fer
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
def cnn_run(tmp_path_factory):
    """One default-config cnn run through the CLI, shortened; shared by the tests that inspect it."""
    cwd = tmp_path_factory.mktemp("cnn_run")
    proc = run_fer("fer.train", *CNN_ARGS, cwd=cwd)
    client, run = only_run(cwd)
    return cwd, client, run, proc

