"""A compact residual network with batch-norm, chosen for accuracy per CPU-second on 48×48 faces.

VGG spends most of its FLOPs at full resolution; this net runs one narrow conv at 48×48, then halves the
resolution before each wider stage and ends in global average pooling instead of large dense layers, so
almost all of its compute sits in 3×3 convolutions at 24, 12 and 6 px where oneDNN runs them efficiently
(`fer.bench`). `stem`, `widths` and `blocks` scale it for sweeps.
"""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from fer.models.act import activation, dropout


def conv_bn(in_ch: int, out_ch: int, act) -> list[nn.Module]:
    return [nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=False), nn.BatchNorm2d(out_ch), activation(act)]


class ResidualBlock(nn.Module):
    """x + BN(conv(act(BN(conv(x))))), then the activation: He et al.'s basic block at constant width."""

    def __init__(self, width: int, act):
        super().__init__()
        self.body = nn.Sequential(*conv_bn(width, width, act), nn.Conv2d(width, width, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(width))
        self.out = activation(act)

    def forward(self, x):
        return self.out(x + self.body(x))


def build_resnet(cfg, act, classes: int) -> nn.Sequential:
    """stem conv at 48 px; per stage: 2×2 max-pool, conv to the stage's width, `blocks` residual blocks;
    global average pool → dropout → classes. `validate` has checked one block count per width."""
    layers: list[nn.Module] = conv_bn(1, cfg.stem, act)
    in_ch = cfg.stem
    for width, blocks in zip(cfg.widths, cfg.blocks, strict=True):
        layers += [nn.MaxPool2d(2), *conv_bn(in_ch, width, act),
                   *(ResidualBlock(width, act) for _ in range(blocks))]
        in_ch = width
    classifier = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), dropout(act, cfg.dropout),
                               nn.Linear(in_ch, classes))
    return nn.Sequential(OrderedDict(features=nn.Sequential(*layers), classifier=classifier))
