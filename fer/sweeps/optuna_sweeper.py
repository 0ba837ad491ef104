"""fer's Optuna search (`hydra/sweeper=fer_optuna`, whose Hydra plugin is a shim over this): a current Optuna study
driven by ask-and-tell.

fer ships its own because hydra-optuna-sweeper 1.3.0 pins optuna<3, and optuna 2.10's RDB storage fails under
the SQLAlchemy 2 that mlflow 3 (through alembic) requires. Each trial is launched through Hydra's launcher, so it
is a normal job: with fer's sweep callback, a child run of the sweep's parent run. The objective is the job's
return value (`fer.train` returns the best val acc).

The search space is `hydra.sweeper.params` plus the sweeps on the command line, in Hydra's override grammar:
`interval(a, b)` is uniform (`tag(log, interval(a, b))` log-uniform; integers when both ends are), `choice(…)`,
`a,b,c` and `range(…)` are categorical; a plain `key=value` is fixed for every trial.

Several sweepers (on different machines) add trials to one study when they name the same `storage` (an RDB URL:
PostgreSQL; or a journal file on a shared filesystem) and `study_name`; each runs `n_trials` of them. Each trial's
job is told its trial (`optuna.study`, `optuna.trial`) and reports val_acc every epoch, so a `pruner` stops trials
that trail the others (their runs end KILLED, tagged fer.optuna.pruned). With an RDB storage the sweeper records
heartbeats of its running trials: if it dies, another sweeper fails them and runs them again (`max_retry`), as it
does with a trial whose job failed.
"""

from __future__ import annotations

import contextlib
import math
import threading
import warnings
from pathlib import Path

import optuna
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import IntervalSweep, Override
from omegaconf import DictConfig

from fer.console import say
from fer.errors import ConfigError
from fer.runs.job import PARENT_FILE, STOPPED_FILE
from fer.runs.trial import PRUNERS, make_storage
from fer.tracking import tags
from fer.tracking.store import client_for, set_tags


def distribution(override: Override) -> optuna.distributions.BaseDistribution:
    """The Optuna distribution a sweep override describes."""
    value = override.value()
    if isinstance(value, IntervalSweep):
        log_scale = "log" in value.tags
        if isinstance(value.start, int) and isinstance(value.end, int):
            return optuna.distributions.IntDistribution(value.start, value.end, log=log_scale)
        return optuna.distributions.FloatDistribution(float(value.start), float(value.end), log=log_scale)
    return optuna.distributions.CategoricalDistribution(list(override.sweep_iterator()))


def search_space(lines: list[str]) -> tuple[dict[str, optuna.distributions.BaseDistribution], dict[str, str]]:
    """Sweeps and fixed overrides by key; a later line for the same key wins (the command line over the yaml)."""
    space: dict[str, optuna.distributions.BaseDistribution] = {}
    fixed: dict[str, str] = {}
    for override in OverridesParser.create().parse_overrides(lines):
        key = override.get_key_element()
        space.pop(key, None)
        fixed.pop(key, None)
        if override.is_sweep_override():
            space[key] = distribution(override)
        else:
            fixed[key] = override.input_line
    return space, fixed


@contextlib.contextmanager
def heartbeats(storage, trials: list[optuna.trial.Trial], every_s: int | None):
    """While its jobs run, the sweeper records each trial's heartbeat; if this process dies, they stop, and another
    sweeper's `fail_stale_trials` fails those trials and enqueues them again."""
    if not every_s or not isinstance(storage, optuna.storages.RDBStorage):
        yield
        return
    done = threading.Event()

    def beat():
        while not done.wait(every_s):
            for trial in trials:
                with contextlib.suppress(Exception):  # a trial told meanwhile has no heartbeat left to record
                    storage.record_heartbeat(trial._trial_id)

    for trial in trials:
        storage.record_heartbeat(trial._trial_id)
    thread = threading.Thread(target=beat, name="optuna-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


class OptunaSearch:
    """The ask-and-tell loop over Hydra's launcher, with the settings of `hydra/sweeper=fer_optuna`."""

    def __init__(self, n_trials: int, n_jobs: int, direction: str, seed: int | None, storage: str | None,
                 study_name: str | None, pruner: str, pruner_startup_trials: int, pruner_warmup_epochs: int,
                 heartbeat_s: int | None, max_retry: int, params: DictConfig | None) -> None:
        if direction not in ("maximize", "minimize"):
            raise ConfigError("hydra.sweeper.direction", "maximize or minimize", direction)
        if n_trials < 1 or n_jobs < 1:
            raise ConfigError("hydra.sweeper.n_trials/n_jobs", "positive integers", (n_trials, n_jobs))
        PRUNERS.get(pruner)
        if max_retry < 0:
            raise ConfigError("hydra.sweeper.max_retry", "0 or more", max_retry)
        self.n_trials, self.n_jobs, self.direction = n_trials, n_jobs, direction
        self.seed, self.storage, self.study_name = seed, storage, study_name
        self.heartbeat_s, self.max_retry = heartbeat_s, max_retry  # the pruner is read by each trial's job
        self.params = {str(k): str(v) for k, v in (params or {}).items()}

    def check_storage(self, sweep_dir: Path) -> None:
        """The study's storage reached (FerError naming it if not), before the sweep's parent run is created."""
        storage = make_storage(self.storage, sweep_dir, self.heartbeat_s, self.max_retry)
        if isinstance(storage, optuna.storages.RDBStorage):
            storage.engine.dispose()

    def sweep(self, arguments: list[str], config: DictConfig, launcher, validate_batch_is_legal) -> optuna.Study:
        """Run `n_trials` trials of the search `arguments` (with `params`) through `launcher`; the study."""
        space, fixed = search_space([f"{k}={v}" for k, v in self.params.items()] + list(arguments))
        if not space:
            raise ConfigError("hydra.sweeper.params", "at least one sweep (interval, choice, range or a,b)",
                              self.params)
        sweep_dir = Path(str(config.hydra.sweep.dir))
        storage = make_storage(self.storage, sweep_dir, self.heartbeat_s, self.max_retry)
        name = self.study_name or f"fer-{sweep_dir.name}"
        study = optuna.create_study(storage=storage, study_name=name, direction=self.direction, load_if_exists=True)
        # a study resumed from storage continues the seeded sequence instead of repeating its first trials
        seed = None if self.seed is None else self.seed + len(study.trials)
        study.sampler = optuna.samplers.TPESampler(seed=seed)
        parent = SweepParent.of(config)
        job_idx = done = 0  # jobs launched; trials run (a failed one that runs again counts once)
        while done < self.n_trials:
            if isinstance(storage, optuna.storages.RDBStorage) and self.heartbeat_s:
                self.fail_stale(study, name, parent)
            trials = [study.ask(space) for _ in range(min(self.n_jobs, self.n_trials - done))]
            batch = [(*fixed.values(), *(f"{k}={v}" for k, v in t.params.items()), f"optuna.study={name}",
                      f"optuna.trial={t.number}") for t in trials]
            validate_batch_is_legal(batch)
            with heartbeats(storage, trials, self.heartbeat_s):
                try:
                    returns = launcher.launch(batch, initial_job_idx=job_idx)
                except Exception as e:  # a job's process died: submitit's launcher raises for its whole batch
                    returns = [Died(e)] * len(trials)
            for trial, ret in zip(trials, returns, strict=True):
                run_id = parent.child(job_idx) if parent else None
                if run_id:
                    trial.set_user_attr("mlflow_run_id", run_id)
                job_idx += 1
                try:
                    value = float(ret.return_value)  # re-raises the exception of a failed job
                except Exception:
                    study.tell(trial, state=optuna.trial.TrialState.FAIL, skip_if_finished=True)
                    if run_id:
                        parent.close_failed(run_id)
                    if not self.retry(study, storage, trial, parent, run_id):
                        raise  # a failing job aborts the search, as with Hydra's basic sweeper
                    continue  # its retry, asked next, counts in its place
                done += 1
                if math.isnan(value):  # pruned, or stopped by Ctrl-C or SIGTERM (fer.runs.job.sweep_job)
                    pruned = parent is not None and run_id is not None and parent.pruned(run_id)
                    study.tell(trial, state=optuna.trial.TrialState.PRUNED if pruned else optuna.trial.TrialState.FAIL,
                               skip_if_finished=True)
                else:  # skip_if_finished: another sweeper may have failed it as stale meanwhile
                    study.tell(trial, value, skip_if_finished=True)
            if stopped(config):
                break
        if not any(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials):
            say("optuna: no trial completed")
            return study
        best = study.best_trial
        say(f"optuna best trial {best.number}: value {best.value:.4f} with "
              + " ".join(f"{k}={v}" for k, v in best.params.items()))
        if parent:
            parent.record_best(study)
        return study

    def fail_stale(self, study: optuna.Study, name: str, parent: SweepParent | None) -> None:
        """Trials whose sweeper stopped beating (it died): failed, queued again by Optuna's retry callback, and
        their runs, which nobody can close now, closed FAILED."""
        running = {t.number for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)
        failed = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.FAIL,))
        for number in sorted(t.number for t in failed if t.number in running):
            say(f"optuna: trial {number} lost its sweeper (no heartbeat for {2 * self.heartbeat_s} s); "
                  + ("it runs again" if self.max_retry else "it is failed"))
            if parent:
                parent.close_lost(name, number)

    def retry(self, study: optuna.Study, storage, trial: optuna.trial.Trial, parent: SweepParent | None,
              run_id: str | None) -> bool:
        """Optuna's own retry of a failed trial (its params enqueued again, linked to the first attempt), up to
        `max_retry` times; whether it was enqueued. Its run is tagged, so the sweep does not count it failed."""
        if not self.max_retry:
            return False
        frozen = storage.get_trial(trial._trial_id)
        if len(optuna.storages.RetryFailedTrialCallback.retry_history(frozen)) >= self.max_retry:
            return False
        optuna.storages.RetryFailedTrialCallback(max_retry=self.max_retry)(study, frozen)
        say(f"optuna: trial {trial.number} failed; it runs again")
        if parent and run_id:
            parent.mark_retried(run_id)
        return True


class Died:
    """The result of a job whose process died before it could return one."""

    def __init__(self, error: Exception):
        self.error = error

    @property
    def return_value(self):
        raise self.error


def stopped(config: DictConfig) -> bool:
    """Whether a signal stopped this sweep (fer's sweep callback marks its folder): ask no more trials."""
    return (Path(str(config.hydra.sweep.dir)) / STOPPED_FILE).exists()


class SweepParent:
    """The parent run that fer's sweep callback opened for this multirun, and its trials' child runs."""

    def __init__(self, client, run_id: str, experiment_id: str):
        self.client, self.run_id, self.experiment_id = client, run_id, experiment_id

    @classmethod
    def of(cls, config: DictConfig) -> SweepParent | None:
        link = Path(str(config.hydra.sweep.dir)) / PARENT_FILE
        if not link.exists():  # the sweep callback is not configured
            return None
        client = client_for(config.tracking.uri)
        run = client.get_run(link.read_text().split()[0])
        return cls(client, run.info.run_id, run.info.experiment_id)

    def child(self, job: int) -> str | None:
        runs = self.client.search_runs([self.experiment_id], f"tags.{tags.PARENT_RUN} = '{self.run_id}' "
                                       f"and tags.{tags.JOB} = '{job}'")
        return runs[0].info.run_id if runs else None

    def close_failed(self, run_id: str) -> None:
        """A failed trial's run its process could not close (killed): FAILED, not RUNNING for ever."""
        if self.client.get_run(run_id).info.status == "RUNNING":
            self.client.set_terminated(run_id, "FAILED")

    def mark_retried(self, run_id: str) -> None:
        set_tags(self.client, run_id, {tags.RETRIED: "true"})

    def close_lost(self, study: str, number: int) -> None:
        """The run of trial `number` of `study`, whichever sweeper started it, FAILED if it is still RUNNING."""
        runs = self.client.search_runs([self.experiment_id], f"params.`optuna.study` = '{study}' and "
                                       f"params.`optuna.trial` = '{number}' and attributes.status = 'RUNNING'")
        for run in runs:
            self.client.set_terminated(run.info.run_id, "FAILED")

    def pruned(self, run_id: str) -> bool:
        return tags.PRUNED in self.client.get_run(run_id).data.tags

    def record_best(self, study: optuna.Study) -> None:
        """Tags for the best trial (with its run, which may be an earlier sweep's in a resumed study) and
        params `best.<key>` for its values."""
        best = study.best_trial
        found = {"best_trial": str(best.number), "best_value": repr(best.value), "study": study.study_name,
                 "direction": study.direction.name.lower()}
        if "mlflow_run_id" in best.user_attrs:
            found["best_run"] = best.user_attrs["mlflow_run_id"]
        set_tags(self.client, self.run_id, {tags.OPTUNA + k: v for k, v in found.items()})
        if "best_run" in found:
            set_tags(self.client, found["best_run"], {tags.BEST_TRIAL: str(best.number)})
        for key, value in best.params.items():
            self.client.log_param(self.run_id, f"best.{key}", value)
