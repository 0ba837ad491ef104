"""A training run's life as `train()` sees it, in two calls. `Session.begin(cfg)` checks what must hold before
anything is read or any run exists (the config, the store, the launcher, a trial's study) and finds what this job
continues: a run named by `resume=`, a preempted job's run, or a continued sweep's finished job, which is kept.
`session.open(…)` opens the MLflow run (new, resumed, or joined on a DDP rank > 0) with the callbacks it needs, and
closes it however the block ends (fer/runs/ending.py)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from omegaconf import DictConfig

from fer.artifacts.callback import RunArtifacts
from fer.console import say
from fer.data.splits import Splits
from fer.explain.callback import ExplainCallback
from fer.runs import ddp, resume
from fer.runs.ending import Interruption
from fer.runs.job import sweep_parent
from fer.runs.launchers import check_launch, job_overrides, output_dir
from fer.runs.run import RunResult, TrackedRun
from fer.runs.trial import OptunaPruning, trial_callback
from fer.runs.validate import validate
from fer.tracking import tags
from fer.tracking.provenance import provenance_tags
from fer.tracking.store import check_server
from fer.training.faults import FiniteLoss, divergence_hint


@dataclass
class Session:
    cfg: DictConfig  # the config the run trains with (a resumed run's own)
    started: float  # time.monotonic() when the job began: trainer.budget_min counts from here
    overrides: list[str]  # this job's own command-line overrides
    sweep_tags: dict[str, str]  # a sweep's job: what makes its run a child of the sweep's parent run
    resumed: resume.Resumed | None
    pruning: OptunaPruning | None  # a trial's job under a pruner: reports val_acc to its trial
    kept: RunResult | None = None  # a continued sweep's job whose run had FINISHED: nothing to train

    @classmethod
    def begin(cls, cfg: DictConfig) -> Session:
        started = time.monotonic()
        validate(cfg)
        check_server(cfg.tracking.uri)  # a server that is down or refuses us fails in seconds, before the data
        check_launch(cfg)
        ddp.export_launcher_tasks()
        overrides, sweep_tags = job_overrides(), sweep_parent()
        resumed = resume.locate(cfg, overrides) if cfg.resume else resume.preempted(cfg, sweep_tags, overrides)
        if resumed and resumed.kept:
            run_id, best_val_acc = resumed.kept
            say(f"run {run_id} had FINISHED: kept as it is")
            return cls(cfg, started, overrides, sweep_tags, resumed, None,
                       RunResult(run_id, "", float("nan"), best_val_acc))
        cfg = resumed.cfg if resumed else cfg
        pruning = trial_callback(cfg)  # a trial's study that cannot be reached fails before its run opens
        return cls(cfg, started, overrides, sweep_tags, resumed, pruning)

    @contextmanager
    def open(self, name: str, params: dict, splits: Splits, texts: dict[str, str]) -> Iterator[TrackedRun]:
        """The run `name` with `params`, its data's left-out rows and dataset inputs logged, and in `run.callbacks`
        what Lightning needs to fill it (artifacts, the loss guard, the stop handling, rank 0's run id, the
        explanations, the trial's pruning); `texts` become artifacts by name. Closed as the block ends."""
        cfg = self.cfg
        run_tags = {**provenance_tags(self.overrides), **self.sweep_tags}
        if splits.tests.get("val") is splits.val:  # the data has no labeled test split
            run_tags[tags.TEST_SPLIT] = "val"
        run = TrackedRun.open(cfg, name, params, run_tags, (output_dir() / "checkpoints").resolve(), self.resumed,
                              self.overrides)
        interruption = Interruption()
        with run.closing(interruption):
            run.log_left_out(splits)
            run.log_datasets(splits, cfg.data)
            run.callbacks = [RunArtifacts(run.client, run.run_id, name, texts),
                             FiniteLoss(divergence_hint(cfg.norm.name)), interruption, ddp.ShareRun(run)]
            if cfg.explain.enabled:
                run.callbacks.append(ExplainCallback(run.client, run.run_id, splits.val, cfg.explain,
                                                    obey=interruption.obey))
            if self.pruning:
                run.callbacks.append(self.pruning)
            yield run
