"""How a run meets its end early: a diverging loss fails it with the step named; a signal is remembered so
the run can be closed as KILLED with the way to resume it."""

from __future__ import annotations

from contextlib import contextmanager

import pytorch_lightning as pl
import torch
from pytorch_lightning.utilities.exceptions import SIGTERMException

from fer.errors import FerError


class NonFiniteLoss(FerError):
    """Training diverged: continuing would only write NaN weights and a meaningless run."""


def divergence_hint(norm: str) -> str:
    """What to try when the loss diverges under `norm=<norm>`: raw 0–255 inputs are the usual cause."""
    if norm == "none":
        return "the inputs are not normalized (norm=none): try norm=standardize"
    return "try a lower optim.lr or trainer.gradient_clip_val"


class FiniteLoss(pl.Callback):
    """Stop at the first non-finite training loss, naming the step and epoch, and what to try (`hint`).

    The check is folded into a device tensor and read every `every` steps (and at epoch end), so a GPU is not
    synchronized on each batch; the step reported is still the first bad one.
    """

    def __init__(self, hint: str, every: int = 25):
        self.hint, self.every = hint, every
        self.first_bad: torch.Tensor | None = None

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        if loss is None:
            return
        step = torch.tensor(trainer.global_step - 1, device=loss.device)  # the optimizer has stepped already
        if self.first_bad is None or self.first_bad.device != loss.device:
            self.first_bad = torch.full((), -1, dtype=torch.long, device=loss.device)
        bad = ~torch.isfinite(loss.detach()) & (self.first_bad < 0)
        self.first_bad = torch.where(bad, step, self.first_bad)
        if trainer.global_step % self.every == 0:
            self._check(trainer, pl_module)

    def on_train_epoch_end(self, trainer, pl_module):
        self._check(trainer, pl_module)

    def _check(self, trainer, pl_module) -> None:
        if self.first_bad is None or int(self.first_bad) < 0:
            return
        steps = max(trainer.num_training_batches, 1)
        step = int(self.first_bad)
        raise NonFiniteLoss(f"training loss became non-finite at step {step} (epoch {step // steps}); "
                            f"the run is stopped as FAILED; {self.hint}")


class Stopped(KeyboardInterrupt):
    """A signal turned into an exception by whoever caught it (a sweep stops its jobs this way), with its name."""

    def __init__(self, cause: str):
        super().__init__(cause)
        self.cause = cause


class Pruned(Exception):
    """An Optuna pruner stopped this trial's training (fer/sweeps/optuna_trial.py): not a failure."""


def stop_cause(exception: BaseException) -> str | None:
    """Which signal an exception that ends a run stands for, when it stands for one."""
    if isinstance(exception, Stopped):
        return exception.cause
    if isinstance(exception, KeyboardInterrupt):
        return "Ctrl-C"
    return "SIGTERM" if isinstance(exception, SIGTERMException) else None


_requested: str | None = None  # a stop asked for by a signal handler, carried out where it is safe
_in_lightning = False  # a fit or test runs: its next batch carries the stop out
_deferring = 0  # inside stops_deferred(): its end carries the stop out


def request_stop(cause: str) -> None:
    """Ask for a stop as if by `cause`, carried out at the next batch of a fit or test, or at the end of a
    `stops_deferred` block. For a signal handler: an exception raised straight from it lands anywhere, also in
    a garbage collector's callback, where Python prints it and drops it."""
    global _requested
    _requested = cause


@contextmanager
def stops_deferred():
    """A requested stop waits for the end of this block (an upload in hand), then raises `Stopped`."""
    global _deferring
    _deferring += 1
    try:
        yield
    finally:
        _deferring -= 1
    if _requested and not _deferring and not _in_lightning:
        raise Stopped(_requested)


class Interruption(pl.Callback):
    """Remembers which signal ended training (Lightning turns Ctrl-C into sys.exit(1) and SIGTERM into
    SIGTERMException, and only its on_exception hook still sees which it was), and carries out a requested
    stop (`request_stop`) at the next batch of a fit or test."""

    def __init__(self):
        self.cause: str | None = None

    @staticmethod
    def _running(running: bool) -> None:
        global _in_lightning
        _in_lightning = running

    def _stop_if_requested(self) -> None:
        if _requested:
            raise Stopped(_requested)

    def on_fit_start(self, trainer, pl_module):
        self._running(True)

    def on_fit_end(self, trainer, pl_module):
        self._running(False)

    def on_test_start(self, trainer, pl_module):
        self._running(True)

    def on_test_end(self, trainer, pl_module):
        self._running(False)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self._stop_if_requested()

    def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0):
        self._stop_if_requested()

    def on_test_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0):
        self._stop_if_requested()

    def on_exception(self, trainer, pl_module, exception):
        self._running(False)
        self.cause = stop_cause(exception)
