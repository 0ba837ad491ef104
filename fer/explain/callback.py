"""The Lightning callback that renders explanations into the run, configured by `explain=`."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import replace

import pytorch_lightning as pl
import torch

from fer.console import say
from fer.data.splits import Split
from fer.explain.render import MlflowSink, render_into_run, render_saliency


class ExplainCallback(pl.Callback):
    """Every `every_n_epochs` epochs: saliency figures as per-step images; after testing (the best
    checkpoint is loaded then): saliency/, filters/ and layer_outputs/ artifacts, plus the saliency
    mass inside the class-deciding masks as metrics where the data has masks (synthetic)."""

    def __init__(self, client, run_id: str, probes: Split, cfg, obey: Callable[[pl.Trainer], None] | None = None):
        self.sink = MlflowSink(client, run_id)
        self.probes, self.cfg = probes, cfg
        self.obey = obey  # carries out a stop asked for while explanations render (Lightning checks only batches)

    def on_train_epoch_end(self, trainer, pl_module):
        n = self.cfg.every_n_epochs
        if n and trainer.is_global_zero and (trainer.current_epoch + 1) % n == 0:
            was_training = pl_module.training
            pl_module.eval()
            with torch.enable_grad():
                render_saliency(pl_module, self.probes, self.cfg, self.sink, step=trainer.current_epoch)
            pl_module.train(was_training)

    def on_test_end(self, trainer, pl_module):
        if not trainer.is_global_zero:
            return
        started = time.monotonic()
        sink = replace(self.sink, obey=functools.partial(self.obey, trainer)) if self.obey else self.sink
        render_into_run(pl_module, self.probes, self.cfg, sink)
        say(f"explanations took {time.monotonic() - started:.0f} s (explain=none skips them; "
            f"explain.filters.steps={self.cfg.filters.steps} sets the filter images' share)", err=True)
