"""A Hydra multirun as one MLflow object: a parent run, the jobs as its nested child runs, and a comparison.

Hydra calls `SweepCallback` in the launching process; jobs (in-process with the basic launcher, in worker
processes with joblib) find the parent through a file in the sweep folder, which is also the link from
`multirun/…` to MLflow. A job that fails makes Hydra abort the sweep without calling `on_multirun_end`, so the
parent is also closed at interpreter exit: it never stays RUNNING.

Ctrl-C or SIGTERM stops a sweep as a whole: the launching process marks the sweep folder stopped and passes
SIGTERM to the worker processes running jobs (which ignore the terminal's Ctrl-C, so that each job gets one
signal), every started job closes its run KILLED, jobs not yet started train nothing, and the parent ends
KILLED with the comparison of what finished and the one command that continues the sweep into it
(`resume=<parent id>`: killed jobs resume from their last checkpoints, finished ones are kept).
"""

from __future__ import annotations

import atexit
import os
import shlex
import signal
import sys
from pathlib import Path

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import ConfigCompositionException, OverrideParseException
from hydra.experimental.callback import Callback
from mlflow.exceptions import MlflowException
from omegaconf import DictConfig, OmegaConf

from fer.config.hydra_errors import comma_sweeps, composition_error
from fer.config.options import compose
from fer.console import say
from fer.errors import EXIT_BAD_INPUT, EXIT_CODES, ConfigError, FerError
from fer.runs.job import JOBS_DIR, PARENT_FILE, SIGNALS, STOPPED_FILE
from fer.runs.launchers import check_launcher, launcher_of
from fer.runs.resume import own_overrides
from fer.runs.validate import validate
from fer.stops import Stopped
from fer.sweeps.comparison import log_comparison
from fer.tracking import tags
from fer.tracking.logged_model import register
from fer.tracking.provenance import TRAIN_COMMAND, provenance_tags
from fer.tracking.store import client_for, experiment_id, report_command, run_url, ui_command

ENDED_WELL = ("FINISHED", "PRUNED", "RETRIED")  # a job's comparison status that does not fail its sweep


class SweepCallback(Callback):
    """Opens the parent run when a multirun starts (or reopens it: `resume=<parent id>`); when it ends, logs
    the comparison and closes it."""

    def __init__(self) -> None:
        self.cause: str | None = None
        self.previous: dict[int, object] = {}
        self.stops_here = True

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        try:  # Hydra turns an exception raised in a callback into a warning and sweeps on
            preflight(config)
            self._open(config)
        except FerError as error:
            say(f"error: {error}", err=True)
            sys.exit(EXIT_BAD_INPUT)

    def _open(self, config: DictConfig) -> None:
        client = client_for(config.tracking.uri)
        exp_id = experiment_id(client, config.tracking)
        sweep_dir = Path(str(config.hydra.sweep.dir))
        overrides = own_overrides(config.hydra.overrides.task)
        if config.get("resume"):
            run = _sweep_parent_run(client, config.resume)
            client.update_run(run.info.run_id, status="RUNNING")
            say(f"continuing sweep {run.info.run_id} ({shlex.join(overrides)})")
        else:
            parent_tags = {**provenance_tags(["-m", *overrides]), tags.SWEEP_DIR: str(sweep_dir),
                           tags.ROLE: tags.SWEEP_ROLE}
            run = client.create_run(exp_id, run_name=f"sweep {' '.join(overrides)}"[:250], tags=parent_tags)
            say(f"sweep parent run {run.info.run_id} ({shlex.join(overrides)})")
        sweep_dir.mkdir(parents=True, exist_ok=True)
        url = run_url(config.tracking, exp_id, run.info.run_id)
        (sweep_dir / PARENT_FILE).write_text(f"{run.info.run_id}\n{url}\n{os.getpid()}\n")
        self.stops_here = launcher_of(config.hydra.launcher).stops_here
        for sig in SIGNALS:
            self.previous[sig] = signal.signal(sig, lambda s, f, c=config: self._stop(c, s, f))
        atexit.register(self._close, config, aborted=True)

    def _stop(self, config: DictConfig, signum: int, frame) -> None:
        """The first Ctrl-C or SIGTERM stops the sweep: the jobs running here stop as a single run would, those
        in workers are passed SIGTERM, and the jobs not yet started will not start."""
        sweep_dir = Path(str(config.hydra.sweep.dir))
        if self.cause is None:
            self.cause = SIGNALS[signum]
            (sweep_dir / STOPPED_FILE).write_text(f"{self.cause}\n")
            for pid_file in (sweep_dir / JOBS_DIR).glob("*"):
                try:
                    os.kill(int(pid_file.name), signal.SIGTERM)
                except (ProcessLookupError, ValueError):
                    pass
        if self.stops_here:
            previous = self.previous.get(signum)
            if callable(previous):
                previous(signum, frame)
            elif signum == signal.SIGINT:
                raise KeyboardInterrupt
            else:
                raise Stopped(self.cause)

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        atexit.unregister(self._close)
        for sig, previous in self.previous.items():
            signal.signal(sig, previous)
        self._close(config, aborted=False)
        if self.cause:
            sys.exit(EXIT_CODES[self.cause])

    def _close(self, config: DictConfig, aborted: bool) -> None:
        """Log the comparison of the jobs so far and terminate the parent: KILLED if a signal stopped the sweep
        (with the command that continues it), FAILED if it was aborted or any job did not finish."""
        sweep_dir = Path(str(config.hydra.sweep.dir))
        link = sweep_dir / PARENT_FILE
        if not link.exists():
            return
        parent_id, url = link.read_text().split()[:2]
        client = client_for(config.tracking.uri)
        jobs = log_comparison(client, parent_id)
        failed = [j for j in jobs if j.status not in ENDED_WELL]
        stopped = self.cause or (sweep_dir / STOPPED_FILE).exists()
        status = "KILLED" if stopped else "FAILED" if aborted or failed or not jobs else "FINISHED"
        if status == "FINISHED" and config.tracking.get("register"):
            register_best(client, parent_id, config.tracking)
        client.set_terminated(parent_id, status)
        if stopped:
            say(f"sweep {parent_id} KILLED by {self.cause or 'a signal'}: {len(jobs) - len(failed)} jobs "
                f"finished, {len(failed)} killed; comparison of what finished in the parent run", err=True)
            say(f"continue it with: {continue_command(config, parent_id)}", err=True)
        else:
            pruned = sum(j.status == "PRUNED" for j in jobs)
            state = "aborted by a failing job" if aborted else f"{len(failed)} not finished" + (
                f", {pruned} pruned" if pruned else "")
            say(f"sweep {parent_id}: {len(jobs)} jobs, {state}; comparison in the parent run")
        say(f"open it with: {ui_command(config.tracking)}")
        say(f"  then {url}")
        if jobs:
            say(f"the homework's answers from it: {report_command(config.tracking, parent_id)}")


def preflight(config: DictConfig) -> None:
    """What the sweep needs, checked before its parent run exists: the launcher's program, every swept value,
    and with fer's Optuna sweeper its settings and its study's storage (reached, its driver installed); no path
    split by its commas."""
    comma_sweeps(config.hydra.overrides.task)
    check_launcher(config)
    check_jobs(config)
    sweeper = config.hydra.sweeper
    if str(sweeper.get("_target_", "")).endswith(".FerOptunaSweeper"):
        from fer.sweeps.optuna_sweeper import OptunaSearch  # optuna only for a search

        settings = OmegaConf.to_container(sweeper, resolve=True)
        settings.pop("_target_")
        OptunaSearch(**settings).check_storage(Path(str(config.hydra.sweep.dir)))


def check_jobs(config: DictConfig) -> None:
    """The swept values, composed with the rest of the command and validated as their jobs will be: a value no
    job can train with is one line, not a FAILED sweep. Every value is in one checked job, each key swept at once
    (the i-th values together), not every combination, so a large grid costs seconds; a search's intervals are
    its sampler's."""
    overrides = OverridesParser.create().parse_overrides(own_overrides(config.hydra.overrides.task))
    fixed = [o.input_line for o in overrides if not o.is_sweep_override()]
    swept = [[f"{o.get_key_element()}={value}" for value in o.sweep_string_iterator()] for o in overrides
             if o.is_discrete_sweep()]
    on_this_machine = not launcher_of(config.hydra.launcher).remote
    for i in range(max(map(len, swept), default=1)):
        try:
            cfg = compose("config", [*fixed, *(values[min(i, len(values) - 1)] for values in swept)])
        except (ConfigCompositionException, OverrideParseException) as e:
            raise composition_error(e) from None
        validate(cfg, on_this_machine)


def register_best(client, parent_id: str, tracking: DictConfig) -> None:
    """`tracking.register` in a sweep: the best job's model (`fer.best_run`) becomes the next version."""
    best = client.get_run(parent_id).data.tags.get(tags.BEST_RUN)
    outputs = client.get_run(best).outputs if best else None
    if not outputs or not outputs.model_outputs:
        say(f"warning: tracking.register={tracking.register}: the best job ({best}) logged no model", err=True)
        return
    register(client, best, outputs.model_outputs[-1].model_id, tracking.register, tracking.alias)


def _sweep_parent_run(client, run_id: str):
    """The parent run `resume=` names in a multirun; anything else stops the sweep before it starts."""
    try:
        run = client.get_run(run_id)
    except MlflowException:
        run = None
    if run is None or run.data.tags.get(tags.ROLE) != tags.SWEEP_ROLE:
        raise ConfigError("resume", f"the id of a sweep's parent run in {client.tracking_uri} to continue", run_id)
    return run


def continue_command(config: DictConfig, parent_id: str) -> str:
    """The multirun again, launcher settings included, into the same parent run."""
    hydra_overrides = [o for o in config.hydra.overrides.hydra if not o.startswith(("hydra.sweep.dir", "hydra.mode"))]
    return shlex.join([*TRAIN_COMMAND, "-m", *hydra_overrides, *own_overrides(config.hydra.overrides.task),
                       f"resume={parent_id}"])
