"""A job of a Hydra multirun, from inside it: the tags that make its run a child of the sweep's parent run, and
how it meets a stop: after the sweep was stopped it trains nothing; a stop passed on by the launching process, or a
cluster's preemption, stops training at its next batch; a job the stop or an Optuna pruner ended returns NaN, so
that the launcher lets the other jobs close their runs. The sweep's folder is where the launching process
(fer/sweeps/callback.py) and its jobs meet."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from pathlib import Path

from hydra.core.hydra_config import HydraConfig

from fer.console import say
from fer.errors import EXIT_CODES
from fer.runs.ending import Pruned
from fer.runs.launchers import multirun, this_launcher
from fer.runs.resume import own_overrides
from fer.stops import STOPS
from fer.tracking import tags

PARENT_FILE = "mlflow_parent_run.txt"  # the parent's id and URL, then the launching process's pid
STOPPED_FILE = "stopped"  # the signal that stopped the sweep
JOBS_DIR = ".jobs"  # one file per worker process running a job, named by its pid
SIGNALS = {signal.SIGINT: "Ctrl-C", signal.SIGTERM: "SIGTERM"}


def _sweep_dir() -> Path | None:
    return Path(HydraConfig.get().sweep.dir) if multirun() else None


def sweep_parent() -> dict[str, str]:
    """Tags that make this job a child of its sweep's parent run; empty outside a multirun."""
    folder = _sweep_dir()
    if folder is None or not (folder / PARENT_FILE).exists():
        return {}
    hc = HydraConfig.get()
    parent_id = (folder / PARENT_FILE).read_text().split()[0]
    return {tags.PARENT_RUN: parent_id, tags.SWEEP: parent_id, tags.SWEEP_DIR: str(folder),
            tags.OVERRIDES: " ".join(own_overrides(hc.overrides.task)), tags.JOB: str(hc.job.num)}


def sweep_job(job: Callable[[], float]) -> float:
    """Run one job of a sweep (outside one, just `job()`). After the sweep was stopped a job trains nothing, and
    a job the stop ended (or an Optuna pruner) returns NaN instead of raising, so the launcher lets the other jobs
    close their runs."""
    folder = _sweep_dir()
    if folder is None:
        return job()
    job = _unless_pruned(job)
    if this_launcher().preemptible:
        return _preemptible_job(job)
    launcher_pid = int((folder / PARENT_FILE).read_text().split()[2]) if (folder / PARENT_FILE).exists() else 0
    marker = None
    if launcher_pid and os.getpid() != launcher_pid:  # a worker: the launching process decides when it stops
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, lambda signum, frame: _request_stop(folder, signum))
        marker = folder / JOBS_DIR / str(os.getpid())  # before the check below: a stop now reaches this job
        marker.parent.mkdir(exist_ok=True)
        marker.touch()
    try:
        if (folder / STOPPED_FILE).exists():
            say(f"job {HydraConfig.get().job.num} not started: the sweep was stopped")
            return float("nan")
        return job()
    except (SystemExit, KeyboardInterrupt):
        if (folder / STOPPED_FILE).exists():
            return float("nan")
        raise
    finally:
        if marker is not None:
            marker.unlink(missing_ok=True)


def _unless_pruned(job: Callable[[], float]) -> Callable[[], float]:
    def run() -> float:
        try:
            return job()
        except Pruned:
            return float("nan")  # the sweeper reads fer.optuna.pruned on the run
    return run


def _preemptible_job(job: Callable[[], float]) -> float:
    """A job of a launcher a cluster may preempt: submitit's (a SLURM job, or submitit_local's process). Its
    preemption or time-out signal stops training at the next batch and closes the run KILLED (tagged
    `fer.preempted`); then submitit's own handler requeues the job, which finds that run and resumes it
    (`resume.preempted`). Its SIGTERM stays submitit's."""
    import submitit

    sig = submitit.JobEnvironment._usr_sig()
    requeue, caught = signal.getsignal(sig), []

    def preempted(signum, frame):
        caught.append(signum)
        STOPS.request("preemption")

    signal.signal(sig, preempted)
    try:
        return job()
    except (SystemExit, KeyboardInterrupt):
        if caught and callable(requeue):
            requeue(caught[0], None)  # checkpoints the submission (the same job again) and requeues it; exits
        raise


def _request_stop(folder: Path, signum: int) -> None:
    """In a worker: the launching process passed the sweep's stop on; the job stops as the user stopped it, at
    its next batch or when its model is uploaded (a job past both has finished)."""
    said = (folder / STOPPED_FILE).read_text().strip() if (folder / STOPPED_FILE).exists() else ""
    STOPS.request(said if said in EXIT_CODES else SIGNALS[signum])
