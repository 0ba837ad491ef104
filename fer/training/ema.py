"""An exponential moving average of the weights (`trainer.ema_decay`), through Lightning's WeightAveraging.

Lightning swaps the average in for validation (so checkpoint selection sees it), saves it as the
checkpoint's `state_dict` (the live weights go to `current_model_state`) and copies it into the model when
training ends. BatchNorm statistics are averaged with the weights.
"""

from __future__ import annotations

import torch
from pytorch_lightning.callbacks import WeightAveraging
from pytorch_lightning.trainer.states import TrainerFn


class EMA(WeightAveraging):
    """EMA after every optimizer step: w_ema ← d · w_ema + (1 − d) · w (the first step copies w), with the decay
    warmed up as TensorFlow's ExponentialMovingAverage does, d = min(decay, (1 + n) / (10 + n)) after n updates:
    a short or budgeted fit is not left averaging mostly its first weights."""

    def __init__(self, decay: float):
        super().__init__()
        self.decay = decay
        self._updates: int | None = None  # n, read from the average's (on-device) counter once, then counted here

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step > self._latest_update_step:
            self.update(pl_module, first=self._latest_update_step == 0)
            self._latest_update_step = trainer.global_step

    @torch.no_grad()
    def update(self, pl_module, first: bool) -> None:
        """One fused lerp over all floating tensors. AveragedModel.update_parameters would do the same but
        reads its on-device step counter twice per call, which makes the CPU wait for the GPU every step.
        Integer buffers (batch-norm's batch counter) follow the model."""
        average = self._average_model
        ema = [*average.module.parameters(), *average.module.buffers()]
        live = [*pl_module.parameters(), *pl_module.buffers()]
        floats = [(e, w) for e, w in zip(ema, live, strict=True) if e.is_floating_point()]
        if first:
            torch._foreach_copy_([e for e, _ in floats], [w for _, w in floats])
        else:
            if self._updates is None:  # a resumed fit goes on from the checkpoint's count
                self._updates = int(average.n_averaged)
            decay = min(self.decay, (1 + self._updates) / (10 + self._updates))
            torch._foreach_lerp_([e for e, _ in floats], [w for _, w in floats], 1 - decay)
        for e, w in zip(ema, live, strict=True):
            if not e.is_floating_point():
                e.copy_(w)
        average.n_averaged += 1
        self._updates = 1 if first else self._updates + 1

    def on_load_checkpoint(self, trainer, pl_module, checkpoint) -> None:
        """Only when resuming a fit. `trainer.test(ckpt_path="best")` on the trainer that fitted would
        otherwise load the checkpoint's live weights (`current_model_state`) over the averaged ones it
        means to test."""
        if trainer.state.fn == TrainerFn.FITTING:
            super().on_load_checkpoint(trainer, pl_module, checkpoint)
