"""fer's own lines on the terminal, said in one place: each starts with `fer: `, notes, warnings and errors go to
stderr and results to stdout, and each is flushed at once, so that a sweep's workers and a process that is
killed next do not lose or interleave them."""

from __future__ import annotations

import logging
import os
import sys
import warnings


def say(text: str, *, err: bool = False, console=None) -> None:
    """`fer: <text>`; through `console` (a rich Console) while it draws a progress bar, so the bar stays whole."""
    if console is not None:
        console.print(f"fer: {text}", markup=False, soft_wrap=True)
    else:
        print(f"fer: {text}", file=sys.stderr if err else sys.stdout, flush=True)


QUIET_LOGGERS = {  # logger → what it says at INFO that is not news to a user of fer
    "mlflow": "creating its database tables, 'View run' links, system metrics starting and stopping",
    "alembic": "MLflow's schema migrations",
    "pytorch_lightning.utilities.rank_zero": "GPU/TPU available, loading `train_dataloader`, fit stopped, tips",
    "pytorch_lightning.accelerators": "the CUDA devices each process sees",
    "lightning_fabric.utilities": "distributed processes registered, seeds",
}
SILENT_LOGGERS = {  # logger → the warnings it prints that fer says itself, once and in its own words
    "urllib3.connectionpool": "each retry of a request to a tracking server that does not answer",
    "mlflow.system_metrics.system_metrics_monitor": "that it could not reach the store of the run it watches",
}
LIBRARIES = r"(mlflow|alembic|sqlalchemy|captum|pytorch_lightning|lightning_fabric|lightning_utilities|torch|" \
            r"torchmetrics|torchvision|kornia|hydra|omegaconf|optuna|submitit|matplotlib|PIL|cv2|numpy|pydantic)\b"


def quiet_libraries() -> None:
    """Library INFO lines and warnings stay off the terminal, so fer's own lines are what a user reads there (a
    tracking server that does not answer is said once by fer, not at each of MLflow's retries).
    Called as a command starts. MLflow sets its logger's level from MLFLOW_LOGGING_LEVEL whenever it is imported,
    which for `fer.train` is later (and in its sweep's workers): so that variable says WARNING too, unless the
    user set it; and MLflow prints a server run's links to stdout unless MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT
    says not to (fer prints them itself). `python -W default -m fer.…` (or PYTHONWARNINGS) shows the warnings
    again."""
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    for name in SILENT_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    if not sys.warnoptions:
        warnings.filterwarnings("ignore", module=LIBRARIES)
