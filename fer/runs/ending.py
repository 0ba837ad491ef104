"""How a run ends early, in one place: what can stop it (a signal, a stop a sweep or a cluster asks for, an Optuna
pruner, a diverging loss or any other error), where a requested stop is carried out, and the run status, tags and
exit code each one ends in (`ending`)."""

from __future__ import annotations

from dataclasses import dataclass

import pytorch_lightning as pl
from pytorch_lightning.utilities.exceptions import SIGTERMException

from fer.errors import EXIT_CODES
from fer.stops import STOPS, Stopped, StopRequests


class Pruned(Exception):
    """An Optuna pruner stopped this trial's training (fer/runs/trial.py): not a failure."""


def stop_cause(exception: BaseException) -> str | None:
    """Which signal an exception that ends a run stands for, when it stands for one."""
    if isinstance(exception, Stopped):
        return exception.cause
    if isinstance(exception, KeyboardInterrupt):
        return "Ctrl-C"
    return "SIGTERM" if isinstance(exception, SIGTERMException) else None


class Interruption(pl.Callback):
    """Remembers which signal ended training (Lightning turns Ctrl-C into sys.exit(1) and SIGTERM into
    SIGTERMException, and only its on_exception hook still sees which it was), and carries out a requested
    stop at the next batch of a fit or test."""

    def __init__(self, stops: StopRequests = STOPS):
        self.stops = stops
        self.cause: str | None = None

    def _running(self, running: bool) -> None:
        self.stops.in_lightning = running

    def on_fit_start(self, trainer, pl_module):
        self._running(True)

    def on_fit_end(self, trainer, pl_module):
        self._running(False)

    def on_test_start(self, trainer, pl_module):
        self._running(True)

    def on_test_end(self, trainer, pl_module):
        self._running(False)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.stops.carry_out()

    def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0):
        self.stops.carry_out()

    def on_test_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0):
        self.stops.carry_out()

    def obey(self, trainer) -> None:
        """Carry out a stop now, outside Lightning's batches (explanations after testing): one requested, or the
        SIGTERM Lightning's own handler only noted."""
        self.stops.carry_out()
        if trainer.received_sigterm:
            raise SIGTERMException

    def on_exception(self, trainer, pl_module, exception):
        self._running(False)
        self.cause = stop_cause(exception)


@dataclass
class End:
    """What an exception that left a run's block makes of the run."""

    status: str  # the MLflow run status: KILLED or FAILED
    cause: str | None = None  # the signal's name (Ctrl-C, SIGTERM, preemption), "pruned", or None for an error
    exit_code: int | None = None  # the process exits with it; None: the exception goes on up
    detail: str = ""  # a pruned trial: when, and at what val_acc


def ending(exception: BaseException, signal_cause: str | None) -> End:
    """The end of a run left by `exception`, `signal_cause` being the signal Lightning saw end training:
    a signal or a requested stop is KILLED, and the process exits with the signal's code (a preemption's run is
    tagged, so that the requeued job finds it); a pruned trial is KILLED and tagged, and its job returns NaN to
    the sweeper; anything else (a diverging loss, bad input met late, a bug) is FAILED with its traceback."""
    if isinstance(exception, Pruned):
        return End("KILLED", "pruned", detail=str(exception))
    if isinstance(exception, (KeyboardInterrupt, SystemExit)):
        cause = signal_cause or stop_cause(exception)
        return End("KILLED", cause, EXIT_CODES[cause] if cause else None)
    return End("FAILED")
