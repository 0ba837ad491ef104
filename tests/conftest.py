"""Helpers shared by the tests: run fer's commands as a user would, read the MLflow store they leave."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from mlflow.tracking import MlflowClient

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
