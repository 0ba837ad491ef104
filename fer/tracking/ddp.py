"""Several processes, one MLflow run: Lightning's DDP launcher re-runs the command for ranks > 0; those
processes join the run rank 0 opened (told through the environment they inherit) and never write to it."""

from __future__ import annotations

import os
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode

from fer.errors import ConfigError

RUN_ENV = "FER_DDP_RUN"


def joined_run() -> tuple[str, Path] | None:
    """(run id, checkpoint dir) of rank 0's run in a process Lightning launched for another rank, else None."""
    if int(os.environ.get("LOCAL_RANK", "0")) == 0 or RUN_ENV not in os.environ:
        return None
    run_id, ckpt_dir = os.environ[RUN_ENV].split(os.pathsep, 1)
    return run_id, Path(ckpt_dir)


def share_run(run_id: str, ckpt_dir: Path) -> None:
    """Called by rank 0 before fit: the launcher copies this environment into the other ranks."""
    os.environ[RUN_ENV] = f"{run_id}{os.pathsep}{ckpt_dir}"


def check_launch(cfg) -> None:
    """DDP re-runs the command for ranks > 0, which a multirun job cannot: refuse before anything starts."""
    multirun = HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN
    if multirun and cfg.trainer.get("strategy", "auto") != "auto":
        raise ConfigError("trainer.strategy", "auto inside a multirun sweep (DDP runs one command at a time)",
                          cfg.trainer.strategy)
