"""Optimizer (`optim=`) and learning-rate schedule (`sched=`) in Lightning's configure_optimizers form."""

from __future__ import annotations

import torch


def build_optimizer(cfg, params) -> torch.optim.Optimizer:
    if cfg.name == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov,
                               weight_decay=cfg.weight_decay)
    cls = {"adam": torch.optim.Adam, "adamax": torch.optim.Adamax}[cfg.name]
    return cls(params, lr=cfg.lr, betas=tuple(cfg.betas), weight_decay=cfg.weight_decay)


def configure(optim_cfg, sched_cfg, params, max_epochs: int, total_steps: int):
    """What `LightningModule.configure_optimizers` returns for these configs."""
    opt = build_optimizer(optim_cfg, params)
    name = sched_cfg.name
    if name == "none":
        return opt
    if name == "plateau":
        sched = torch.optim.lr_scheduler.ReduceLROnPlateau(
            opt, mode="max", factor=sched_cfg.factor, patience=sched_cfg.patience, min_lr=sched_cfg.min_lr)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "monitor": "val_acc", "interval": "epoch"}}
    if name == "cosine":
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max_epochs, eta_min=sched_cfg.min_lr)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "epoch"}}
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=optim_cfg.lr * sched_cfg.max_lr_factor, total_steps=total_steps, pct_start=sched_cfg.pct_start)
    return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
