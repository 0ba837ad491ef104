"""The Lightning Trainer for `trainer=`: checkpointing on val_acc, rich progress, fer's MLflow logger, EMA."""

from __future__ import annotations

import time
from pathlib import Path
from typing import get_args

import pytorch_lightning as pl
import torch
from lightning_fabric.connector import (
    _PRECISION_INPUT_STR,
    _PRECISION_INPUT_STR_ALIAS,
    _PRECISION_INPUT_STR_ALIAS_CONVERSION,
)
from pytorch_lightning.accelerators import AcceleratorRegistry
from pytorch_lightning.callbacks import ModelCheckpoint, RichProgressBar

from fer.errors import ConfigError
from fer.registry import Registry
from fer.training.budget import TimeBudget
from fer.training.ema import EMA

# ranks > 0 re-run the command and join rank 0's run (fer/runs/ddp.py): only launchers that re-run it
STRATEGIES = Registry("trainer.strategy", {"auto": "one process", "ddp": "one process per device",
                                           "ddp_find_unused_parameters_true": "ddp, for models with unused parameters"})


def check_accelerator(name: str, key: str) -> None:
    """`name` is one this machine has (Lightning's own test of each), said before any run exists: Lightning
    would find out only when the Trainer is built, in a traceback, after the run was opened."""
    if name == "auto":
        return
    known = AcceleratorRegistry.available_accelerators() | {"gpu"}  # gpu: Lightning's alias for whichever GPU
    have = sorted(n for n in known - {"gpu"} if AcceleratorRegistry[n]["accelerator"].is_available())
    wanted = {"cuda", "mps"} if name == "gpu" else {name}
    if not wanted & set(have):
        raise ConfigError(key, f"an accelerator this machine has: {' or '.join(['auto', *have])}"
                          + ("" if name in known else f" (Lightning knows {', '.join(sorted(known))})"), name)


# what `trainer.precision` may be: Lightning's own names and aliases, and fer's `auto`
PRECISIONS = ("auto", *get_args(_PRECISION_INPUT_STR), *get_args(_PRECISION_INPUT_STR_ALIAS))
# an alias by its full name (bf16 → bf16-mixed, 32 → 32-true), as Lightning reads it, without its warning line
FULL_PRECISION = _PRECISION_INPUT_STR_ALIAS_CONVERSION


def native_precision(accelerator: str) -> str:
    """`trainer.precision=auto`: bf16-mixed where the device multiplies bfloat16 in hardware (a GPU that supports
    it; a CPU with AVX-512 BF16 or AMX), else 32-true, since a CPU without them emulates bf16 more slowly than fp32."""
    if accelerator in ("cuda", "gpu") or (accelerator == "auto" and torch.cuda.is_available()):
        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "32-true"
    if accelerator not in ("cpu", "auto"):
        return "32-true"
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")  # torch.cpu's own, private in torch 2.13
    return "bf16-mixed" if any(getattr(torch.cpu, probe, lambda: False)() for probe in probes) else "32-true"


class ProgressBar(RichProgressBar):
    """Rich progress without Lightning's logger version (an MLflow run id fragment) among the metrics."""

    def get_metrics(self, trainer, pl_module):
        items = super().get_metrics(trainer, pl_module)
        items.pop("v_num", None)
        return items


class BestAndLast(ModelCheckpoint):
    """The best checkpoint on val_acc, and last.ckpt after every epoch. Lightning 2.6 refreshes last.ckpt only in
    an epoch that saved a new best, so a resume after an epoch that did not improve would start an epoch (or
    more) back; here last.ckpt is written whenever Lightning left it behind."""

    @property
    def state_key(self) -> str:
        """Lightning's own key for this callback's state in a checkpoint, so runs saved before (and after) resume."""
        return super().state_key.replace(type(self).__qualname__, ModelCheckpoint.__qualname__, 1)

    def _refresh_last(self, trainer) -> None:
        if self.save_last and not self._should_skip_saving_checkpoint(trainer):  # skips a step already saved
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    def on_train_epoch_end(self, trainer, pl_module):
        super().on_train_epoch_end(trainer, pl_module)
        if self._should_save_on_train_epoch_end(trainer):
            self._refresh_last(trainer)

    def on_validation_end(self, trainer, pl_module):
        super().on_validation_end(trainer, pl_module)
        if not self._should_save_on_train_epoch_end(trainer):
            self._refresh_last(trainer)


def device_kwargs(cfg) -> dict:
    """The Trainer arguments that decide where and how fast a step runs; shared with `fer.bench`."""
    return {"accelerator": cfg.accelerator, "devices": cfg.devices, "strategy": cfg.get("strategy", "auto"),
            "precision": cfg.precision,
            "benchmark": cfg.get("benchmark"), "deterministic": cfg.deterministic}


def build_trainer(cfg, logger, callbacks: list, ckpt_dir: Path, started: float | None = None
                  ) -> tuple[pl.Trainer, ModelCheckpoint]:
    """A Trainer and its checkpoint callback (MLFlowLogger knows no save_dir for sqlite or http URIs,
    so the checkpoint directory is given explicitly). With `ema_decay`, the EMA callback comes before the
    checkpoint, so what is validated and saved is the average. With `budget_min`, training ends that many
    minutes after `started` (a `time.monotonic()` reading; default now), its schedule fitted to the time."""
    budget = [TimeBudget(cfg.budget_min, started or time.monotonic())] if cfg.get("budget_min") else []
    ckpt = BestAndLast(dirpath=ckpt_dir, filename="best-{epoch:02d}", monitor="val_acc", mode="max", save_last=True,
                       auto_insert_metric_name=False)
    ema = [EMA(cfg.ema_decay)] if cfg.get("ema_decay") else []
    extra = [ProgressBar(leave=True)] if cfg.progress_bar else []
    trainer = pl.Trainer(
        **device_kwargs(cfg),
        max_epochs=cfg.max_epochs,
        limit_train_batches=cfg.limit_train_batches,
        limit_val_batches=cfg.limit_val_batches,
        limit_test_batches=cfg.limit_test_batches,
        num_sanity_val_steps=cfg.num_sanity_val_steps,
        gradient_clip_val=cfg.gradient_clip_val,
        logger=logger,
        callbacks=[*budget, *ema, ckpt, *callbacks, *extra],
        enable_progress_bar=cfg.progress_bar,
        enable_model_summary=False,
        log_every_n_steps=1,
        use_distributed_sampler=False,  # FERDataModule shares rows out itself: Lightning's swap breaks its slicing
        inference_mode=not cfg.get("compile"),  # test under no_grad, like validation: the same compiled graph
    )
    return trainer, ckpt


def inference_trainer(accelerator: str, logger=False, callbacks=()) -> pl.Trainer:
    """A Trainer for test or predict on a restored model: one device, no checkpoints."""
    return pl.Trainer(accelerator=accelerator, devices=1, logger=logger, callbacks=list(callbacks),
                      enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False)
