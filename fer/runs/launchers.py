"""What each Hydra launcher can do for a run, as one table: whether a stop signal ends what the launching process
is doing, whether a job may start DDP processes, whether a cluster may preempt a job and requeue it. The sweep's
stop handling, the DDP check and a job's preemption handling read it instead of recognizing launchers by name.
Also the job's own context: its overrides and its output folder."""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode

from fer.errors import ConfigError


@dataclass(frozen=True)
class Launcher:
    name: str  # as `hydra/launcher=` names it
    stops_here: bool  # a stop signal ends what the launching process does: the job it runs itself, or its wait on a
    # cluster's jobs; otherwise the jobs run in local worker processes, which are told and waited for
    ddp: bool  # each job is its own allocation with its own tasks, so it may train with DDP
    preemptible: bool  # a cluster may preempt a job; submitit then requeues it, and it resumes its run
    needs: str = ""  # a program the launching machine must have on PATH
    remote: bool = False  # jobs run on other machines (a cluster's nodes): what this one has says nothing of theirs


SUBMITIT = "hydra_plugins.hydra_submitit_launcher.submitit_launcher."
LAUNCHERS = {  # by the launcher config's _target_
    "hydra._internal.core_plugins.basic_launcher.BasicLauncher": Launcher("basic", True, False, False),
    "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher": Launcher("joblib", False, False, False),
    f"{SUBMITIT}LocalLauncher": Launcher("submitit_local", True, True, True),
    f"{SUBMITIT}SlurmLauncher": Launcher("submitit_slurm", True, True, True, needs="sbatch", remote=True),
}
OTHER = Launcher("other", stops_here=False, ddp=False, preemptible=False)  # what fer assumes of one it does not know


def launcher_of(config) -> Launcher:
    """The launcher a multirun's config (`config.hydra.launcher`, or HydraConfig's `launcher`) names."""
    return LAUNCHERS.get(str(config.get("_target_", "")), OTHER)


def multirun() -> bool:
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def this_launcher() -> Launcher | None:
    """The launcher that runs this job of a multirun; None outside one."""
    return launcher_of(HydraConfig.get().launcher) if multirun() else None


def check_launch(cfg) -> None:
    """Lightning's DDP launcher re-runs the command for ranks > 0, which a job of a local multirun cannot; a
    launcher whose jobs are each their own allocation (submitit) allows DDP."""
    launcher = this_launcher()
    if launcher and not launcher.ddp and cfg.trainer.get("strategy", "auto") != "auto":
        raise ConfigError("trainer.strategy", "auto inside a multirun sweep on this launcher (DDP runs one command "
                          "at a time; hydra/launcher=submitit_slurm gives each job its own processes)",
                          cfg.trainer.strategy)


def check_launcher(config) -> None:
    """A launcher that needs a program this machine does not have (SLURM's sbatch) is refused as the sweep
    starts, before any run exists."""
    launcher = launcher_of(config.hydra.launcher)
    if launcher.needs and shutil.which(launcher.needs) is None:
        chosen = config.hydra.runtime.choices.get("hydra/launcher", launcher.name)
        raise ConfigError("hydra/launcher", f"a launcher this machine can run: {launcher.name} submits jobs with "
                          f"`{launcher.needs}`, which is not on PATH here (on a SLURM login node it is; "
                          "hydra/launcher=slurm_local runs the same jobs on this machine)", chosen)


def job_overrides() -> list[str]:
    """This job's own overrides (inside a multirun sweep too)."""
    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else sys.argv[1:]


def output_dir() -> Path:
    return Path(HydraConfig.get().runtime.output_dir) if HydraConfig.initialized() else Path("outputs")
