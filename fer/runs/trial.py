"""What an Optuna search shares between its sweepers and its trials' jobs, which may all be different processes on
different machines: the study's storage (an RDB URL such as PostgreSQL, or a journal file on a shared
filesystem), the pruner, and, in each trial's job, the trial itself, to which training reports val_acc every epoch
so that the pruner can stop a trial that trails the others.

The pruning callback is written here rather than taken from optuna-integration: its Lightning callback imports
the `lightning` package, and fer runs on `pytorch_lightning`.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import optuna
import pytorch_lightning as pl
from hydra.core.hydra_config import HydraConfig
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from fer.console import say
from fer.errors import ConfigError, FerError
from fer.registry import Registry
from fer.runs.ending import Pruned

PRUNERS = Registry("hydra.sweeper.pruner", {
    "none": "every trial trains to the end",
    "median": "stop a trial whose val_acc trails the median of earlier trials at the same epoch",
    "hyperband": "Hyperband over epochs (successive halving at several budgets)",
})


def make_pruner(name: str, startup_trials: int, warmup_epochs: int, max_epochs: int) -> optuna.pruners.BasePruner:
    PRUNERS.get(name)
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=startup_trials, n_warmup_steps=warmup_epochs)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=max(1, warmup_epochs), max_resource=max_epochs)
    return optuna.pruners.NopPruner()


def make_storage(spec: str | None, sweep_dir: Path, heartbeat_s: int | None = None, max_retry: int = 0):
    """The study's storage: an RDB URL (`postgresql+psycopg2://…`, `sqlite:///…`; with heartbeats, and retries of
    trials whose heartbeat stopped), a journal file path, or (null) a journal file in the sweep folder, so that the
    trials' jobs reach the study whatever launcher runs them."""
    if spec and "://" in spec:
        retry = optuna.storages.RetryFailedTrialCallback(max_retry=max_retry) if max_retry else None
        beat = {"heartbeat_interval": heartbeat_s, "grace_period": 2 * heartbeat_s} if heartbeat_s else {}
        try:
            with warnings.catch_warnings():  # heartbeats are "experimental" in Optuna since 2.9: said once per trial
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(spec, failed_trial_callback=retry, **beat)
        except (SQLAlchemyError, ImportError, ValueError) as e:
            first = str(e).strip().splitlines()[0][:200]
            if isinstance(e, ImportError):  # Optuna re-raises SQLAlchemy's failed import of the URL's driver
                first = f"the Python driver {spec.split('://')[0]}:// asks for is not installed; pip install it"
            try:
                shown = make_url(spec).render_as_string(hide_password=True)
            except SQLAlchemyError:  # not even a URL: nothing in it to hide
                shown = spec
            raise FerError(f"hydra.sweeper.storage={shown}: the study's database cannot be used ({first}); start "
                           "it or correct the URL (postgresql+psycopg2://user@host/db, sqlite:///file.db)") from None
    path = Path(spec) if spec else sweep_dir / "optuna.journal"
    path.parent.mkdir(parents=True, exist_ok=True)
    return optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(path)))


class OptunaPruning(pl.Callback):
    """After each epoch's validation, val_acc is reported to the trial; when the pruner says so, training stops
    with `Pruned` (the run then ends KILLED, tagged fer.optuna.pruned). Rank 0 decides; under DDP every rank
    learns it."""

    def __init__(self, trial: optuna.trial.Trial):
        self.trial = trial
        self.reporting = True  # until the trial is ended elsewhere (another sweeper failed it as stale)

    def on_validation_end(self, trainer, pl_module):
        if trainer.sanity_checking or "val_acc" not in trainer.callback_metrics:
            return
        value, epoch, prune = float(trainer.callback_metrics["val_acc"]), trainer.current_epoch, False
        if trainer.is_global_zero and self.reporting:
            try:
                self.trial.report(value, epoch)
                prune = self.trial.should_prune()
            except (optuna.exceptions.UpdateFinishedTrialError, ValueError, RuntimeError) as e:
                say(f"warning: Optuna trial {self.trial.number} no longer takes reports ({e}): it trains on "
                    "unpruned")
                self.reporting = False
        if trainer.strategy.broadcast(prune, src=0):
            raise Pruned(f"epoch {epoch}: val_acc {value:.4f}")


def trial_callback(cfg) -> OptunaPruning | None:
    """In a trial's job of fer's Optuna sweeper with a pruner: the callback that reports to that trial."""
    number = cfg.get("optuna", {}).get("trial")
    if number is None or not HydraConfig.initialized():
        return None
    sweeper = HydraConfig.get().sweeper  # optuna.trial is set by fer's sweeper, whose config names a pruner
    if sweeper.get("pruner", "none") == "none":
        return None
    storage = make_storage(sweeper.storage, Path(HydraConfig.get().sweep.dir))
    name = cfg.optuna.study
    try:
        study_id = storage.get_study_id_from_name(name)
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, int(number))
    except KeyError:
        raise ConfigError("optuna.trial", f"a trial of study {name!r} in {sweeper.storage or 'the sweep folder'}",
                          number) from None
    pruner = make_pruner(sweeper.pruner, sweeper.pruner_startup_trials, sweeper.pruner_warmup_epochs,
                         cfg.trainer.max_epochs)
    study = optuna.load_study(study_name=name, storage=storage, pruner=pruner)
    return OptunaPruning(optuna.trial.Trial(study, trial_id))
