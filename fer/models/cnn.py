"""The compact CNN of the FER2013 homework."""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from fer.labels import IMAGE_SIZE
from fer.models.act import activation, dropout


def build_cnn(cfg, act, classes: int) -> nn.Sequential:
    """conv(first_kernel) → conv … each followed by [BN] + act + 2×2 max-pool, then hidden → classes."""
    layers: list[nn.Module] = []
    in_ch, size = 1, IMAGE_SIZE
    for i, out_ch in enumerate(cfg.channels):
        k = cfg.first_kernel if i == 0 else cfg.kernel
        bn = i >= cfg.batchnorm_from
        layers.append(nn.Conv2d(in_ch, out_ch, k, padding=k // 2, bias=not bn))
        if bn:
            layers.append(nn.BatchNorm2d(out_ch))
        layers += [activation(act), nn.MaxPool2d(2)]
        in_ch, size = out_ch, size // 2
    features = nn.Sequential(*layers)
    classifier = nn.Sequential(
        nn.Flatten(),
        nn.Linear(in_ch * size * size, cfg.hidden),
        activation(act),
        dropout(act, cfg.dropout),
        nn.Linear(cfg.hidden, classes),
    )
    return nn.Sequential(OrderedDict(features=features, classifier=classifier))
