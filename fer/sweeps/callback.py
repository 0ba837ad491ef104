"""A Hydra multirun as one MLflow object: a parent run, the jobs as its nested child runs, and a comparison.

Hydra calls `SweepCallback` in the launching process; jobs (in-process with the basic launcher, in worker
processes with joblib) find the parent through a file in the sweep folder, which is also the link from
`multirun/…` to MLflow. A job that fails makes Hydra abort the sweep without calling `on_multirun_end`, so the
parent is also closed at interpreter exit: it never stays RUNNING.
"""

from __future__ import annotations

import atexit
import shlex
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig

from fer.sweeps.comparison import log_comparison
from fer.tracking import tags
from fer.tracking.provenance import provenance_tags
from fer.tracking.store import client_for, experiment_id, run_url

PARENT_FILE = "mlflow_parent_run.txt"


def sweep_parent() -> dict[str, str]:
    """Tags that make this job a child of its sweep's parent run; empty outside a multirun."""
    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        return {}
    hc = HydraConfig.get()
    link = Path(hc.sweep.dir) / PARENT_FILE
    if not link.exists():
        return {}
    parent_id = link.read_text().split()[0]
    return {tags.PARENT_RUN: parent_id, tags.SWEEP: parent_id, tags.SWEEP_DIR: str(Path(hc.sweep.dir)),
            tags.OVERRIDES: " ".join(hc.overrides.task), tags.JOB: str(hc.job.num)}


class SweepCallback(Callback):
    """Opens the parent run when a multirun starts; when it ends, logs the comparison and closes it."""

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        client = client_for(config.tracking.uri)
        exp_id = experiment_id(client, config.tracking)
        sweep_dir = Path(str(config.hydra.sweep.dir))
        overrides = list(config.hydra.overrides.task)
        parent_tags = {**provenance_tags(["-m", *overrides]), tags.SWEEP_DIR: str(sweep_dir),
                       tags.ROLE: tags.SWEEP_ROLE}
        run = client.create_run(exp_id, run_name=f"sweep {' '.join(overrides)}"[:250], tags=parent_tags)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        url = run_url(config.tracking, exp_id, run.info.run_id)
        (sweep_dir / PARENT_FILE).write_text(f"{run.info.run_id}\n{url}\n")
        print(f"fer: sweep parent run {run.info.run_id} ({shlex.join(overrides)})")
        atexit.register(self._close, config, aborted=True)

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        atexit.unregister(self._close)
        self._close(config, aborted=False)

    @staticmethod
    def _close(config: DictConfig, aborted: bool) -> None:
        """Log the comparison of the jobs so far and terminate the parent: FAILED if the sweep was aborted
        or any job did not finish."""
        link = Path(str(config.hydra.sweep.dir)) / PARENT_FILE
        if not link.exists():
            return
        parent_id, url = link.read_text().split()[:2]
        client = client_for(config.tracking.uri)
        jobs = log_comparison(client, parent_id)
        failed = [j for j in jobs if j.status != "FINISHED"]
        client.set_terminated(parent_id, "FAILED" if aborted or failed or not jobs else "FINISHED")
        state = "aborted by a failing job" if aborted else f"{len(failed)} not finished"
        print(f"fer: sweep {parent_id}: {len(jobs)} jobs, {state}; comparison in the parent run", flush=True)
        print(f"fer:   {url}", flush=True)
