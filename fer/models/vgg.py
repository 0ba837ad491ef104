"""VGG16/19 with batch-norm, for 1×48×48 input: five 2×2 pools take 48 px to 1."""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from fer.models.act import activation, dropout

# convolutions per stage; channels per stage are 64, 128, 256, 512, 512 as in Simonyan & Zisserman
STAGES = {11: (1, 1, 2, 2, 2), 13: (2, 2, 2, 2, 2), 16: (2, 2, 3, 3, 3), 19: (2, 2, 4, 4, 4)}
WIDTHS = (64, 128, 256, 512, 512)


def build_vgg(cfg, act, classes: int) -> nn.Sequential:
    if cfg.depth not in STAGES:
        raise ValueError(f"model.depth must be one of {sorted(STAGES)}, got {cfg.depth}")
    layers: list[nn.Module] = []
    in_ch = 1
    for n_convs, width in zip(STAGES[cfg.depth], WIDTHS, strict=True):
        for _ in range(n_convs):
            layers += [nn.Conv2d(in_ch, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), activation(act)]
            in_ch = width
        layers.append(nn.MaxPool2d(2))
    w = cfg.classifier_width
    classifier = nn.Sequential(
        nn.Flatten(),
        nn.Linear(in_ch, w),
        activation(act),
        dropout(act, cfg.dropout),
        nn.Linear(w, w),
        activation(act),
        dropout(act, cfg.dropout),
        nn.Linear(w, classes),
    )
    return nn.Sequential(OrderedDict(features=nn.Sequential(*layers), classifier=classifier))
