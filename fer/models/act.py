"""Activation modules chosen by `act=`, and what a self-normalizing one (selu) needs beside it.

Models are built from activation *modules* with inplace=False, never `F.relu`: Captum's hooks need
modules and break on in-place ops.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from fer.registry import Registry


@dataclass(frozen=True)
class Activation:
    module: type[nn.Module]
    self_normalizing: bool = False  # LeCun-normal init and AlphaDropout keep its mean and variance


ACTIVATIONS = Registry("act.name", {
    "relu": Activation(nn.ReLU),
    "selu": Activation(nn.SELU, self_normalizing=True),
    "leaky_relu": Activation(nn.LeakyReLU),
    "elu": Activation(nn.ELU),
    "gelu": Activation(nn.GELU),
})
ACTIVATION_TYPES = tuple(a.module for a in ACTIVATIONS.values())


def activation(cfg) -> nn.Module:
    """A fresh activation module for `act.name` (leaky_relu with `act.slope`)."""
    module = ACTIVATIONS.get(cfg.name).module
    return module(negative_slope=cfg.slope) if module is nn.LeakyReLU else module()


def dropout(cfg, p: float) -> nn.Module:
    """AlphaDropout for a self-normalizing activation, which keeps its mean and variance; Dropout otherwise."""
    return nn.AlphaDropout(p) if ACTIVATIONS.get(cfg.name).self_normalizing else nn.Dropout(p)


def init_weights(model: nn.Module, cfg) -> nn.Module:
    """LeCun-normal weights (std = 1/sqrt(fan_in)) for a self-normalizing activation; PyTorch's defaults else."""
    if not ACTIVATIONS.get(cfg.name).self_normalizing:
        return model
    for m in model.modules():
        if isinstance(m, nn.Conv2d | nn.Linear):
            nn.init.kaiming_normal_(m.weight, nonlinearity="linear", mode="fan_in")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return model
