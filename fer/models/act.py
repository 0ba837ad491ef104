"""Activation modules chosen by `act=`, and what selu needs to self-normalize.

Models are built from activation *modules* with inplace=False, never `F.relu`: Captum's hooks need
modules and break on in-place ops.
"""

from __future__ import annotations

from torch import nn


def activation(cfg) -> nn.Module:
    """A fresh activation module for `act.name`."""
    name = cfg.name
    if name == "relu":
        return nn.ReLU(inplace=False)
    if name == "selu":
        return nn.SELU(inplace=False)
    if name == "leaky_relu":
        return nn.LeakyReLU(negative_slope=cfg.slope, inplace=False)
    if name == "elu":
        return nn.ELU(inplace=False)
    if name == "gelu":
        return nn.GELU()
    raise ValueError(f"unknown activation {name!r}")


def dropout(cfg, p: float) -> nn.Module:
    """AlphaDropout for selu, which keeps the self-normalizing mean and variance; Dropout otherwise."""
    return nn.AlphaDropout(p) if cfg.name == "selu" else nn.Dropout(p)


def init_weights(model: nn.Module, cfg) -> nn.Module:
    """LeCun-normal weights for selu (std = 1/sqrt(fan_in)); PyTorch's defaults for the rest."""
    if cfg.name != "selu":
        return model
    for m in model.modules():
        if isinstance(m, nn.Conv2d | nn.Linear):
            nn.init.kaiming_normal_(m.weight, nonlinearity="linear", mode="fan_in")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return model
