"""Optimizer (`optim=`) and learning-rate schedule (`sched=`) in Lightning's configure_optimizers form."""

from __future__ import annotations

import torch

from fer.registry import Registry


def sgd(cfg, params) -> torch.optim.Optimizer:
    return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov,
                           weight_decay=cfg.weight_decay)


def adam_like(cls):
    def build(cfg, params) -> torch.optim.Optimizer:
        return cls(params, lr=cfg.lr, betas=tuple(cfg.betas), weight_decay=cfg.weight_decay)

    return build


OPTIMIZERS = Registry("optim.name", {"adam": adam_like(torch.optim.Adam), "adamax": adam_like(torch.optim.Adamax),
                                     "sgd": sgd})


def build_optimizer(cfg, params) -> torch.optim.Optimizer:
    return OPTIMIZERS.get(cfg.name)(cfg, params)


def plateau(cfg, opt, max_epochs: int, total_steps: int, peak_lr: float) -> dict:
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="max", factor=cfg.factor, patience=cfg.patience,
                                                       min_lr=cfg.min_lr)
    return {"scheduler": sched, "monitor": "val_acc", "interval": "epoch"}


def cosine(cfg, opt, max_epochs: int, total_steps: int, peak_lr: float) -> dict:
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max_epochs, eta_min=cfg.min_lr)
    return {"scheduler": sched, "interval": "epoch"}


def onecycle(cfg, opt, max_epochs: int, total_steps: int, peak_lr: float) -> dict:
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=peak_lr * cfg.max_lr_factor, total_steps=total_steps,
                                                pct_start=cfg.pct_start, anneal_strategy=cfg.get("anneal", "cos"),
                                                cycle_momentum=cfg.get("cycle_momentum", True))
    return {"scheduler": sched, "interval": "step"}


# each: (sched config, optimizer, epochs, optimizer steps, optim.lr) → Lightning's lr_scheduler dict; none: no schedule
SCHEDULES = Registry("sched.name", {"none": None, "plateau": plateau, "cosine": cosine, "onecycle": onecycle})


def build_schedule(optim_cfg, sched_cfg, opt, max_epochs: int, total_steps: int) -> dict | None:
    """Lightning's lr_scheduler dict for `opt` over a fit of `max_epochs` epochs, `total_steps` optimizer steps;
    None for `sched=none`. Also what a time budget rebuilds once it knows how many steps fit
    (fer/training/budget.py)."""
    schedule = SCHEDULES.get(sched_cfg.name)
    return None if schedule is None else schedule(sched_cfg, opt, max_epochs, total_steps, optim_cfg.lr)


def configure(optim_cfg, sched_cfg, params, max_epochs: int, total_steps: int):
    """What `LightningModule.configure_optimizers` returns for these configs."""
    opt = build_optimizer(optim_cfg, params)
    schedule = build_schedule(optim_cfg, sched_cfg, opt, max_epochs, total_steps)
    return opt if schedule is None else {"optimizer": opt, "lr_scheduler": schedule}
