"""Model construction: parameter counts checked against the architecture by hand, DNN matching, activations."""

from __future__ import annotations

import pytest
import torch
from omegaconf import OmegaConf
from torch import nn

from fer.config import ActConfig
from fer.models import build_model, count_params, model_option


def vgg_params(depth: int, width: int) -> int:
    """VGG-BN on 1×48×48 counted from the paper's layout: 3×3 convs (no bias, BN adds 2 per channel)."""
    stages = {16: [[64, 64], [128, 128], [256] * 3, [512] * 3, [512] * 3],
              19: [[64, 64], [128, 128], [256] * 4, [512] * 4, [512] * 4]}[depth]
    total, c_in = 0, 1
    for stage in stages:
        for c in stage:
            total += 9 * c_in * c + 2 * c
            c_in = c
    return total + (512 * width + width) + (width * width + width) + (width * 7 + 7)


def act(name: str, **kw):
    return OmegaConf.structured(ActConfig(name=name, **kw))


@pytest.mark.parametrize("depth", [16, 19])
def test_vgg_parameter_counts(depth):
    model = build_model(model_option(f"vgg{depth}"), act("relu"))
    assert count_params(model)["params_total"] == vgg_params(depth, 512)
    assert model(torch.zeros(2, 1, 48, 48)).shape == (2, 7)


def test_cnn_layout():
    model = build_model(model_option("cnn"), act("relu"))
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [32, 64, 128, 128] and convs[0].kernel_size == (5, 5)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in model.modules()) == 2
    assert model(torch.zeros(3, 1, 48, 48)).shape == (3, 7)


@pytest.mark.parametrize("target", ["cnn", "vgg16", "vgg19"])
@pytest.mark.parametrize("depth", [1, 2, 3, 5])
def test_dnn_matches_parameter_count_within_2_percent(target, depth):
    dnn = model_option("dnn")
    dnn.match, dnn.depth = target, depth
    want = count_params(build_model(model_option(target), act("relu")))["params_total"]
    model = build_model(dnn, act("relu"))
    got = count_params(model)["params_total"]
    assert abs(got - want) / want <= 0.02, (got, want)
    assert sum(isinstance(m, nn.Linear) for m in model.modules()) == depth + 1
    assert model(torch.zeros(2, 1, 48, 48)).shape == (2, 7)


@pytest.mark.parametrize("name,cls", [("relu", nn.ReLU), ("selu", nn.SELU), ("leaky_relu", nn.LeakyReLU),
                                      ("elu", nn.ELU), ("gelu", nn.GELU)])
@pytest.mark.parametrize("model_name", ["cnn", "vgg16", "dnn"])
def test_every_activation_is_the_chosen_module(name, cls, model_name):
    model = build_model(model_option(model_name), act(name))
    acts = [m for m in model.modules() if isinstance(m, nn.ReLU | nn.SELU | nn.LeakyReLU | nn.ELU | nn.GELU)]
    assert acts and all(type(m) is cls for m in acts)
    assert not any(getattr(m, "inplace", False) for m in acts)


def test_selu_uses_lecun_normal_and_alpha_dropout():
    model = build_model(model_option("dnn"), act("selu"))
    assert any(isinstance(m, nn.AlphaDropout) for m in model.modules())
    assert not any(type(m) is nn.Dropout for m in model.modules())
    first = next(m for m in model.modules() if isinstance(m, nn.Linear))
    assert abs(first.weight.std().item() - first.in_features ** -0.5) < 0.05 * first.in_features ** -0.5
    assert torch.count_nonzero(first.bias) == 0


def test_leaky_relu_slope_is_used():
    model = build_model(model_option("cnn"), act("leaky_relu", slope=0.2))
    assert all(m.negative_slope == 0.2 for m in model.modules() if isinstance(m, nn.LeakyReLU))
