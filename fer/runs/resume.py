"""`resume=<run_id>` or `resume=last`: continue a killed run from its last end-of-epoch checkpoint, into the
same MLflow run, with the config it was started with.

The config is recomposed from the overrides the run recorded (its `fer.command` tag), so `python -m fer.train
resume=<id>` is the whole command; overrides given beside `resume` may only change what cannot alter the
result (`ADJUSTABLE`). Metrics the run already holds for an epoch are not logged again, so each epoch's
metrics exist once across the kill and the resume.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig, OmegaConf

from fer.config.options import compose
from fer.console import say
from fer.errors import ConfigError, FerError
from fer.runs.validate import validate
from fer.tracking import checkpoints, tags
from fer.tracking.provenance import TRAIN_COMMAND, flatten
from fer.tracking.store import client_for
from fer.training.checkpoint import load_checkpoint

# Keys a resumed run may change: how long it trains, how it shows progress and keeps copies, and how this
# machine reaches the store (another machine may spell its URI otherwise).
ADJUSTABLE = ("resume", "trainer.max_epochs", "trainer.progress_bar", "trainer.checkpoint_upload_every",
              "data.num_workers", "tracking.uri")


@dataclass
class Resumed:
    run_id: str | None  # None: a job of a continued sweep that had not started: a new run in that sweep
    cfg: DictConfig
    checkpoint_dir: Path | None = None
    checkpoint: Path | None = None  # None: killed before its first epoch ended, so it starts over in the same run
    logged: set[tuple[str, int]] = field(default_factory=set)  # (metric, step) pairs the run already holds
    kept: tuple[str, float] | None = None  # (run id, best val acc) of a continued sweep's job that had FINISHED


def locate(cfg: DictConfig, overrides: list[str]) -> Resumed:
    """The run to continue and the config to continue it with; a FerError if either cannot be used.

    `resume=<id of a sweep's parent run>` in a multirun continues that sweep: each job finds its own child run
    (by its overrides) and continues it, keeps it if it FINISHED, or starts as a new child if it never started.
    """
    client = client_for(cfg.tracking.uri)
    run = _find(client, cfg)
    if run.data.tags.get(tags.ROLE) == tags.SWEEP_ROLE:
        run = _sweep_child(client, run, overrides)
        if run is None:
            return Resumed(None, validate(compose("config", [*own_overrides(overrides), "resume=null"])))
        if run.info.status == "FINISHED":
            best = max((m.value for m in client.get_metric_history(run.info.run_id, "val_acc")), default=float("nan"))
            return Resumed(run.info.run_id, cfg, kept=(run.info.run_id, best))
    run_id = run.info.run_id
    command = run.data.tags.get(tags.COMMAND)
    ckpt_dir = run.data.tags.get(tags.CHECKPOINT_DIR)
    if not command or not ckpt_dir:
        raise FerError(f"run {run_id} was not started by `python -m fer.train` (no {tags.COMMAND} or "
                       f"{tags.CHECKPOINT_DIR} tag): it cannot be resumed")
    stored = own_overrides(shlex.split(command)[len(TRAIN_COMMAND):])
    new = validate(compose("config", [*stored, *own_overrides(overrides), f"resume={run_id}"]))
    _check_unchanged(run, new)
    if run.info.status == "FINISHED" and new.trainer.max_epochs <= int(run.data.params["trainer.max_epochs"]):
        raise ConfigError("trainer.max_epochs", f"more than the {run.data.params['trainer.max_epochs']} epochs "
                          f"run {run_id} already FINISHED", new.trainer.max_epochs)
    last = Path(ckpt_dir) / checkpoints.LAST
    if not last.is_file():
        last = checkpoints.fetch(client, run_id, Path(ckpt_dir)) or last  # on another machine: from the store
    if not last.is_file() and any(k.startswith(("train_", "val_")) for k in run.data.metrics):
        why = ("it was started with trainer.checkpoint_upload_every=0, so its store keeps none"
               if run.data.params.get("trainer.checkpoint_upload_every") == "0" else
               f"its artifact store holds no {checkpoints.ARTIFACT_DIR}/{checkpoints.LAST} either (deleted?)")
        raise FerError(f"run {run_id}: its last checkpoint {last} is not there, and {why}; the run logged epochs, "
                       "so starting over would log them twice: start a new run instead")
    if last.is_file():
        load_checkpoint(last, f"run {run_id}: its last checkpoint {last}")  # refused now, not inside the fit
    logged = {(key, m.step) for key in run.data.metrics for m in client.get_metric_history(run_id, key)}
    return Resumed(run_id, new, Path(ckpt_dir), last if last.is_file() else None, logged)


def preempted(cfg: DictConfig, sweep_tags: dict[str, str], overrides: list[str]) -> Resumed | None:
    """In a sweep's job that runs again because its cluster preempted it (submitit requeued it): the run it
    had started, to continue; None for a job's first start."""
    parent = sweep_tags.get(tags.PARENT_RUN)
    if not parent:
        return None
    client = client_for(cfg.tracking.uri)
    exp_id = client.get_run(parent).info.experiment_id
    runs = client.search_runs([exp_id], f"tags.`{tags.PARENT_RUN}` = '{parent}' and tags.`{tags.JOB}` = "
                               f"'{sweep_tags[tags.JOB]}'")
    # KILLED, or RUNNING again where another DDP rank of this job has reopened it already
    runs = [r for r in runs if tags.PREEMPTED in r.data.tags and r.info.status in ("KILLED", "RUNNING")]
    if not runs:
        return None
    say(f"job {sweep_tags[tags.JOB]} was preempted: continuing its run {runs[0].info.run_id}")
    return locate(OmegaConf.merge(cfg, {"resume": runs[0].info.run_id}), overrides)


def own_overrides(overrides) -> list[str]:
    """A job's overrides without the `resume=` that brought it back."""
    return [o for o in overrides if not o.startswith("resume=")]


def _sweep_child(client: MlflowClient, parent, overrides: list[str]):
    """The child run of sweep `parent` that this job (its overrides) started, or None if it never started."""
    own = " ".join(own_overrides(overrides))
    runs = client.search_runs([parent.info.experiment_id], f"tags.{tags.PARENT_RUN} = '{parent.info.run_id}'",
                              max_results=10000)
    mine = [r for r in runs if " ".join(own_overrides(r.data.tags.get(tags.OVERRIDES, "").split())) == own]
    return max(mine, key=lambda r: r.info.start_time) if mine else None


def resume_command(run_id: str, overrides: list[str]) -> str:
    """What to type to continue `run_id`: the run remembers its config, only the store must be named."""
    store = [o for o in overrides if o.split("=")[0].lstrip("+~").startswith("tracking")]
    return shlex.join([*TRAIN_COMMAND, f"resume={run_id}", *store])


def _find(client: MlflowClient, cfg: DictConfig):
    if cfg.resume != "last":
        try:
            return client.get_run(cfg.resume)
        except MlflowException:
            raise ConfigError("resume", f"a run id in {client.tracking_uri} or 'last'", cfg.resume) from None
    exp = client.get_experiment_by_name(cfg.tracking.experiment)
    runs = [] if exp is None else client.search_runs(
        [exp.experiment_id], "attributes.status != 'FINISHED'", order_by=["attributes.start_time DESC"],
        max_results=50)
    runs = [r for r in runs if r.data.tags.get(tags.ROLE) != tags.SWEEP_ROLE and tags.CHECKPOINT_DIR in r.data.tags]
    if not runs:
        raise ConfigError("resume", f"an unfinished run in experiment '{cfg.tracking.experiment}' of "
                          f"{client.tracking_uri} for resume=last", "none there")
    return runs[0]


def _check_unchanged(run, cfg: DictConfig) -> None:
    changed = [(k, run.data.params[k], v) for k, v in flatten(cfg).items()
               if k in run.data.params and run.data.params[k] != v and k not in ADJUSTABLE]
    if changed:
        key, was, now = changed[0]
        more = f" (and {len(changed) - 1} more keys)" if len(changed) > 1 else ""
        raise ConfigError(key, f"{was!r} as in run {run.info.run_id}: a resumed run keeps its config{more}; "
                          "start a new run to change it", now)
