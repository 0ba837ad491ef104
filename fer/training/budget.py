"""Training to a wall-clock budget (`trainer.budget_min`): epoch counts do not transfer between machines, minutes do.

The budget runs from the job's start (data reading included) to the end of training; the test, explanations and
the model's logging follow it. The fit's first steps are timed (fewer on a machine so slow that timing them would
take a noticeable share of the budget); from their rate (and from how long an epoch's end takes — validation,
checkpoints, artifacts — once one has passed) the callback plans how many optimizer steps fit in what is left,
rebuilds the learning-rate schedule for exactly that many (so a one-cycle ends at its final rate), and asks
Lightning to stop after the last one — Lightning then validates the partial last epoch. At each epoch's start it
plans again from the measured times (each epoch's own steps re-measure the rate), so a machine that slows down
still ends on time with the schedule completed. Lightning's own `max_time` stops a fit wherever the clock runs out,
mid-schedule; hence this callback.
"""

from __future__ import annotations

import math
import time

import pytorch_lightning as pl

from fer.training.optim import build_schedule

WARMUP_STEPS = 5  # untimed first steps (allocator, oneDNN's kernel choice)
TIMED_STEPS = 20  # steps timed before the first plan…
TIMED_SHARE = 0.05  # …or fewer, once timing has taken this share of the budget (a slow machine, a short budget)
MIN_TIMED_STEPS = 3  # the fewest steps a rate is measured from: the first plan's, and each epoch's after it
UNPLANNED_EPOCHS = 10**6  # the fit's horizon until the first plan: the config's max_epochs might end it before
REPLAN_TOLERANCE = 0.01  # a new plan replaces the schedule when it differs by more than this share of steps


class TimeBudget(pl.Callback):
    """Plans the fit's optimizer steps to end `minutes` after `started` (a `time.monotonic()` reading).

    Two rates are measured: seconds per training step (within an epoch) and seconds per epoch boundary — the
    validation, checkpointing and artifacts between one epoch's last step and the next one's first, which
    the plan pays once per epoch and once more after the last step.
    """

    def __init__(self, minutes: float, started: float):
        self.deadline = started + 60 * minutes
        self.timing_s = TIMED_SHARE * 60 * minutes  # the longest the first plan waits for its timed steps
        self.total: int | None = None  # the planned optimizer steps of the whole fit
        self.step_s: float | None = None
        self.boundary_s: float | None = None
        self._timer: tuple[int, float] | None = None  # (global step, time) where the current timing began
        self._last_step_at = 0.0
        self._first_step = 0
        self._lr = float("nan")

    def setup(self, trainer, pl_module, stage):
        if stage == "fit":  # before configure_optimizers, whose provisional schedule must outlast the timing
            trainer.fit_loop.max_epochs = UNPLANNED_EPOCHS

    def on_train_start(self, trainer, pl_module):
        self._first_step = trainer.global_step  # a resumed fit starts past 0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self._lr = trainer.optimizers[0].param_groups[0]["lr"]  # this step's rate (the schedule moves on after it)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        step = trainer.global_step
        self._last_step_at = now = time.monotonic()
        if step == self._first_step + WARMUP_STEPS:
            self._timer = (step, now)
        elif self._timer and self.total is None and (step == self._timer[0] + TIMED_STEPS or (
                step >= self._timer[0] + MIN_TIMED_STEPS and now - self._timer[1] >= self.timing_s)):
            self.step_s = (now - self._timer[1]) / (step - self._timer[0])
            self._plan(trainer, pl_module)
        if self.total is not None and step >= self.total:
            trainer.should_stop = True

    def on_train_epoch_end(self, trainer, pl_module):
        if self.total is not None and self._timer and trainer.global_step - self._timer[0] >= MIN_TIMED_STEPS:
            self.step_s = (self._last_step_at - self._timer[1]) / (trainer.global_step - self._timer[0])

    def on_train_epoch_start(self, trainer, pl_module):
        now = time.monotonic()
        if self.total is not None and trainer.current_epoch > 0 and self._last_step_at:
            self.boundary_s = now - self._last_step_at  # the last epoch's validation, checkpoints and artifacts
            self._plan(trainer, pl_module)
        if self.total is not None:
            self._timer = (trainer.global_step, now)

    def on_fit_end(self, trainer, pl_module):
        if trainer.logger is not None and self.total is not None:
            trainer.logger.log_metrics({"budget_steps": trainer.global_step, "budget_final_lr": self._lr,
                                        "budget_left_s": self.deadline - time.monotonic()}, step=trainer.global_step)

    def _plan(self, trainer, pl_module) -> None:
        """Steps that fit before the deadline, with an epoch boundary after each epoch and one after the last step.
        Before the first boundary it is guessed as a validation pass (forward only: a third of a step a batch)."""
        per_epoch = max(1, trainer.num_training_batches)
        boundary_s = self.boundary_s if self.boundary_s is not None else self.step_s * trainer.num_val_batches[0] / 3
        left = self.deadline - time.monotonic()
        more = max(1, math.floor((left - boundary_s) / (self.step_s + boundary_s / per_epoch)))
        total = trainer.global_step + more
        if self.total is not None and abs(total - self.total) <= REPLAN_TOLERANCE * self.total:
            return
        self.total = total
        trainer.fit_loop.max_epochs = math.ceil(total / per_epoch)
        self._reschedule(trainer, pl_module, total, trainer.fit_loop.max_epochs)
        if trainer.logger is not None:
            trainer.logger.log_metrics({"budget_planned_steps": total, "budget_s_per_step": self.step_s,
                                        "budget_s_per_epoch_end": boundary_s}, step=trainer.global_step)

    @staticmethod
    def _reschedule(trainer, pl_module, total: int, epochs: int) -> None:
        """The schedule built anew for `total` steps (`epochs` epochs) and advanced to where the fit is."""
        for config in trainer.lr_scheduler_configs:
            if config.reduce_on_plateau:  # follows val_acc, not the step count
                continue
            fresh = build_schedule(pl_module.cfg.optim, pl_module.cfg.sched, config.scheduler.optimizer, epochs,
                                   total)["scheduler"]
            for _ in range(config.scheduler.last_epoch):  # as often as the old one was stepped
                fresh.step()
            config.scheduler = fresh
