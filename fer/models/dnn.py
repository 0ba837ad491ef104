"""A fully connected network, optionally sized to match another model's parameter count (`model.match`, solved
when the config is checked: fer/runs/validate.py)."""

from __future__ import annotations

import math
from collections import OrderedDict

from torch import nn

from fer.labels import PIXELS
from fer.models.act import activation, dropout

INPUTS = PIXELS


def dnn_params(widths: list[int], classes: int) -> int:
    """Parameters of flatten → Linear(widths…) → Linear(classes), weights and biases."""
    dims = [INPUTS, *widths, classes]
    return sum(a * b + b for a, b in zip(dims, dims[1:], strict=False))


def matched_widths(target: int, depth: int, classes: int) -> list[int]:
    """Equal widths h for `depth` hidden layers whose total parameter count is closest to `target`.

    params(h) = (depth-1)·h² + (INPUTS + 1 + depth-1 + classes)·h + classes, solved for h.
    """
    a = depth - 1
    b = INPUTS + 1 + (depth - 1) + classes
    c = classes - target
    h = -c / b if a == 0 else (-b + math.sqrt(b * b - 4 * a * c)) / (2 * a)
    candidates = {max(1, math.floor(h)), max(1, math.ceil(h))}
    best = min(candidates, key=lambda w: abs(dnn_params([w] * depth, classes) - target))
    return [best] * depth


def build_dnn(cfg, act, classes: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    in_f = INPUTS
    for w in cfg.hidden:
        layers += [nn.Linear(in_f, w), activation(act), dropout(act, cfg.dropout)]
        in_f = w
    layers.append(nn.Linear(in_f, classes))
    return nn.Sequential(OrderedDict(features=nn.Flatten(), classifier=nn.Sequential(*layers)))
