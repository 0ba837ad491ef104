"""Helpers shared by the tests: run fer's commands as a user would, read the MLflow store they leave."""

from __future__ import annotations

import contextlib
import io
import os
import runpy
import subprocess
import sys
from pathlib import Path
from unittest import mock

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from mlflow.tracking import MlflowClient

if os.environ.get("PYTEST_XDIST_WORKER"):
    # `pytest -n 2` (the default addopts) on 2 cores: one thread per worker and per process it starts, instead of
    # each taking every core and the two fighting over them.
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)


# Small synthetic runs: enough to exercise every code path, short enough for the CPU suite budget.
QUICK = ["data.n_train=480", "data.n_val=160", "data.n_test=160", "trainer.max_epochs=2", "trainer.progress_bar=false"]
# The shared cnn run also renders its explanations every epoch, with a shorter gradient ascent.
CNN_ARGS = [*QUICK, "explain.every_n_epochs=1", "explain.filters.steps=40"]


CONF = str(Path(__file__).resolve().parents[1] / "conf")


def composed(*overrides: str):
    """The training config as `python -m fer.train <overrides>` would compose it."""
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        return compose("config", overrides=list(overrides))


def run_fer(module: str, *args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, capture_output=True, text=True,
                          env=env, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"{module} {' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def call_fer(module: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    """`python -m <module> <args>` run inside this process the way `-m` runs it (runpy as __main__, so through
    Hydra and fer's error guard alike), without run_fer's ~6 s interpreter start. The working directory and the
    environment (Lightning's PL_GLOBAL_SEED) are restored afterwards."""
    GlobalHydra.instance().clear()
    out, err, code = io.StringIO(), io.StringIO(), 0
    with (contextlib.chdir(cwd), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err),
          mock.patch.object(sys, "argv", [module, *args]), mock.patch.dict(os.environ)):
        try:
            runpy.run_module(module, run_name="__main__", alter_sys=True)
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 1
    return subprocess.CompletedProcess([module, *args], code, out.getvalue(), err.getvalue())


@pytest.fixture(scope="session")
def empty_store(tmp_path_factory) -> Path:
    """An MLflow sqlite store with its tables made: a test copies it to `<cwd>/mlflow.db` instead of each
    run paying the ~6 s of schema migrations a new store costs."""
    path = tmp_path_factory.mktemp("empty_store") / "mlflow.db"
    MlflowClient(f"sqlite:///{path}").search_experiments()
    return path


def store(cwd: Path) -> MlflowClient:
    return MlflowClient(f"sqlite:///{cwd / 'mlflow.db'}")


def only_run(cwd: Path):
    client = store(cwd)
    runs = [r for e in client.search_experiments() for r in client.search_runs([e.experiment_id])]
    assert len(runs) == 1, [r.info.run_name for r in runs]
    return client, runs[0]


@pytest.fixture(scope="session")
def cnn_run(tmp_path_factory):
    """One default-config cnn run through the CLI, shortened; shared by the tests that inspect it."""
    cwd = tmp_path_factory.mktemp("cnn_run")
    proc = run_fer("fer.train", *CNN_ARGS, cwd=cwd)
    client, run = only_run(cwd)
    return cwd, client, run, proc

