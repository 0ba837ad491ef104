"""A diverging loss stops training at once, naming the step and what to try, instead of writing NaN weights into
a run for the rest of its epochs (fer/runs/ending.py turns it into a FAILED run)."""

from __future__ import annotations

import pytorch_lightning as pl
import torch

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
