"""The life of the MLflow run one training process writes: opened new, resumed or joined (a DDP rank > 0), and
closed FINISHED, KILLED (with the way to resume it) or FAILED (with its traceback) — never left RUNNING.

fer owns the run (create, params, tags, terminate) through its store's client, and hands the run id to
Lightning's logger for the metrics. A joined rank gets a `JoinedRun`, whose writes do nothing.
"""

from __future__ import annotations

import contextlib
import csv
import io
import traceback
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from mlflow.exceptions import MlflowException
from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor
from omegaconf import DictConfig

from fer.console import say
from fer.runs import ddp
from fer.runs.ending import ending
from fer.runs.resume import Resumed, resume_command
from fer.stops import STOPS
from fer.tracking import tags
from fer.tracking.lineage import dataset_inputs, log_dataset_inputs
from fer.tracking.logged_model import log_and_register
from fer.tracking.logger import ResumedLogger, RunLogger
from fer.tracking.retry import no_http_retries
from fer.tracking.store import (
    artifact_bytes,
    client_for,
    experiment_id,
    megabytes,
    run_url,
    set_tags,
    start_run,
    ui_command,
)


@dataclass
class RunResult:
    run_id: str
    experiment_id: str
    test_acc: float
    best_val_acc: float


class TrackedRun:
    """The run this process trains into; `open` decides which, `closing` ends it whatever happens."""

    def __init__(self, client, experiment_id: str, run_id: str, name: str, checkpoint_dir: Path, logger,
                 tracking: DictConfig, overrides: list[str]):
        self.client, self.experiment_id, self.run_id, self.name = client, experiment_id, run_id, name
        self.checkpoint_dir, self.logger, self.tracking, self.overrides = checkpoint_dir, logger, tracking, overrides
        self.in_sweep = False  # a sweep's child: the sweep says how to continue it, not each job
        self.resumed = False  # its inputs were logged when it started
        self.monitor: SystemMetricsMonitor | None = None
        self.run_tags: dict[str, str] = {}  # the tags of its opening (written only on a new run)
        self.callbacks: list = []  # what Lightning needs to fill it (fer/runs/session.py)

    @classmethod
    def open(cls, cfg: DictConfig, name: str, params: dict, run_tags: dict[str, str], checkpoint_dir: Path,
             resumed: Resumed | None, overrides: list[str]) -> TrackedRun:
        """A new run with `params` and `run_tags` (its checkpoints in `checkpoint_dir`); the run `resumed`
        continues; or, in a DDP rank > 0, rank 0's run."""
        client = client_for(cfg.tracking.uri)
        client.final_wait_s = cfg.tracking.final_wait_s
        exp_id = experiment_id(client, cfg.tracking)
        logger_args = {"experiment_name": cfg.tracking.experiment, "tracking_uri": client.tracking_uri,
                       "checkpoint_upload_every": cfg.trainer.get("checkpoint_upload_every", 1)}
        if ddp.global_rank() > 0:  # rank 0's run: its id comes by broadcast (ddp.ShareRun)
            joined = JoinedRun(client, exp_id, None, name, checkpoint_dir, False, cfg.tracking, overrides)
            joined.run_tags = run_tags
            return joined
        if resumed and resumed.run_id:
            run_id, checkpoint_dir = resumed.run_id, resumed.checkpoint_dir
            client.update_run(run_id, status="RUNNING")
            logger = ResumedLogger(**logger_args, run_id=run_id, logged=resumed.logged)
            say(f"resuming run {name} ({run_id}) from {resumed.checkpoint or 'its start (no epoch had ended)'}")
        else:
            run_id = start_run(client, exp_id, name, params, {**run_tags, tags.CHECKPOINT_DIR: str(checkpoint_dir)})
            logger = RunLogger(**logger_args, run_id=run_id)
        run = cls(client, exp_id, run_id, name, checkpoint_dir, logger, cfg.tracking, overrides)
        run.in_sweep, run.resumed = tags.PARENT_RUN in run_tags, bool(resumed and resumed.run_id)
        run.run_tags = run_tags
        if cfg.tracking.system_metrics:
            run.watch_system(cfg.tracking.system_metrics_every_s)
        return run

    @property
    def command(self) -> str:
        """The command that runs this job again."""
        return self.run_tags[tags.COMMAND]

    def watch_system(self, every_s: float) -> None:
        """MLflow's system-metrics monitor (CPU, memory, disk, network; GPU with nvidia-ml-py) on this run,
        sampled every `every_s` seconds into `system/…` metrics, continuing the steps of a resumed run."""
        self.monitor = SystemMetricsMonitor(self.run_id, sampling_interval=every_s, resume_logging=self.resumed,
                                            tracking_uri=self.client.tracking_uri)
        self.monitor.start()

    def _stop_watching(self) -> None:
        if self.monitor is not None:
            with no_http_retries() if self.client.pending else contextlib.nullcontext():  # the store is away
                self.monitor.finish()
            self.monitor = None

    def log_left_out(self, splits) -> None:
        """The rows the data left out, each kind said by a tag (how many) and a csv (which, and why): malformed
        rows `data.on_bad_row=skip` dropped (skipped_rows.csv), and faces dropped on purpose, FER+'s not-a-face
        and unclear ones (dropped_rows.csv)."""
        for rows, tag, path in ((splits.skipped, tags.SKIPPED_ROWS, "skipped_rows.csv"),
                                (splits.dropped, tags.DROPPED_ROWS, "dropped_rows.csv")):
            if not rows:
                continue
            set_tags(self.client, self.run_id, {tag: len(rows)})
            out = io.StringIO()
            writer = csv.writer(out)
            writer.writerow(["line", "reason"])
            writer.writerows(rows)
            self.client.log_text(self.run_id, out.getvalue(), path)

    def log_datasets(self, splits, data_cfg) -> None:
        """The splits as the run's dataset inputs (training, validation, test), once."""
        if not self.resumed:
            log_dataset_inputs(self.client, self.run_id, dataset_inputs(splits, data_cfg))

    @contextmanager
    def closing(self, interruption):
        """End the run by what ends the block, as `ending` maps it: KILLED for a signal (`interruption.cause` names
        it; the process exits with the signal's code) or a pruner, FAILED with error.txt for any other exception."""
        try:
            yield
        except BaseException as e:
            end = ending(e, interruption.cause)
            self._stop_watching()
            if end.status == "FAILED":
                self.client.log_text(self.run_id, traceback.format_exc(), "error.txt")
            elif end.cause == "pruned":
                set_tags(self.client, self.run_id, {tags.PRUNED: end.detail})
            elif end.cause == "preemption":  # the requeued job finds the run by this tag and resumes it
                set_tags(self.client, self.run_id, {tags.PREEMPTED: str(self._preemptions() + 1)})
            self.client.set_terminated(self.run_id, end.status)
            if end.cause == "pruned":
                say(f"run {self.name} ({self.run_id}) pruned by Optuna at {end.detail}", err=True)
            elif end.status == "KILLED":
                self._say_killed(end.cause)
            if end.exit_code is not None:
                raise SystemExit(end.exit_code) from None
            raise

    def _preemptions(self) -> int:
        try:
            return int(self.client.get_run(self.run_id).data.tags.get(tags.PREEMPTED, "0"))
        except Exception:  # the store is away: the tag goes through the spool, counted from here
            return 0

    def _say_killed(self, cause: str | None) -> None:
        last = self.checkpoint_dir / "last.ckpt"
        say(f"run {self.name} ({self.run_id}) KILLED by {cause or 'an exit'}; last checkpoint: "
            f"{last if last.is_file() else 'none (no epoch had ended)'}", err=True)
        if not self.in_sweep:
            say(f"resume it with: {resume_command(self.run_id, self.overrides)}", err=True)

    def log_model(self, module) -> str | None:
        """With `tracking.log_model`, the tested model as the run's MLflow Model; registered as a new version of
        `tracking.register` (and `tracking.alias` pointed at it) unless the run is a sweep's job, whose sweep
        registers its best. The model id, or None. A sweep's stop that arrives meanwhile waits for the upload."""
        with STOPS.deferred():
            return log_and_register(self.client, self.run_id, module, self.tracking, may_register=not self.in_sweep)

    def finish(self, best_checkpoint: str, note: str) -> None:
        """Keep the best checkpoint in the run, describe the run (`note`, markdown) and close it FINISHED."""
        self._stop_watching()
        if best_checkpoint:
            self.client.log_artifact(self.run_id, best_checkpoint, "checkpoints")
            set_tags(self.client, self.run_id, {tags.CHECKPOINT: f"checkpoints/{Path(best_checkpoint).name}"})
        set_tags(self.client, self.run_id, {tags.NOTE: note})
        self.client.set_terminated(self.run_id, "FINISHED")

    def result(self, test_acc: float, best_val_acc: float) -> RunResult:
        """The run's numbers, said with where to look at it (a sweep's job leaves that to the sweep's end)."""
        result = RunResult(self.run_id, self.experiment_id, test_acc, best_val_acc)
        say(f"run {self.name} ({self.run_id}) finished: test_acc {test_acc:.4f}, "
            f"best val_acc {best_val_acc:.4f}")
        url = run_url(self.tracking, self.experiment_id, self.run_id)
        if self.in_sweep:  # its own link (a link in the UI drops the model-training side); the UI command once
            say(f"  {url}")
        else:
            say(f"open it with: {ui_command(self.tracking)}")
            say(f"  then {url}")
            if footprint := self._footprint():
                say(footprint)
        return result

    def _footprint(self) -> str | None:
        """What the run occupies: its artifacts in the store (checkpoints apart) and its local checkpoints. Not
        said while the store is away (calls kept for it): asking it would only wait out MLflow's retries."""
        if self.client.pending:
            return None
        try:
            stored = artifact_bytes(self.client, self.run_id)
        except (MlflowException, OSError):  # the store is away: its share cannot be read now
            return None
        local = sum(f.stat().st_size for f in self.checkpoint_dir.glob("*.ckpt"))
        checkpoints = stored.get("checkpoints", 0)
        return (f"it occupies {megabytes(sum(stored.values()))} in its artifact store ({megabytes(checkpoints)} of "
                f"it checkpoints: last and best) and {megabytes(local)} of checkpoints in {self.checkpoint_dir}")


class JoinedRun(TrackedRun):
    """Rank 0's run seen from another DDP rank: Lightning keeps the rank from logging, and this from writing."""

    def log_left_out(self, splits) -> None:
        pass

    def log_datasets(self, splits, data_cfg) -> None:
        pass

    def watch_system(self, every_s: float) -> None:
        pass

    def log_model(self, module) -> str | None:
        return None

    @contextmanager
    def closing(self, interruption):
        yield

    def finish(self, best_checkpoint: str, note: str) -> None:
        pass

    def result(self, test_acc: float, best_val_acc: float) -> RunResult:
        return RunResult(self.run_id, self.experiment_id, float("nan"), float("nan"))
