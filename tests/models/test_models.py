"""Model construction: parameter counts checked against the architecture by hand, DNN matching, activations."""

from __future__ import annotations

import pytest
import torch
from helpers import composed, vgg_params
from omegaconf import OmegaConf
from torch import nn

from fer.config.options import option
from fer.config.schema import ActConfig
from fer.models import MODELS, count_params, create_model
from fer.models.act import ACTIVATIONS
from fer.models.resnet import ResidualBlock
from fer.runs.validate import validate


def act(name: str, **kw):
    return OmegaConf.structured(ActConfig(name=name, **kw))


@pytest.mark.parametrize("depth", [16, 19])
def test_vgg_parameter_counts(depth):
    model = create_model(option("model", f"vgg{depth}"), act("relu"))
    assert count_params(model)["params_total"] == vgg_params(depth, 512)
    assert model(torch.zeros(2, 1, 48, 48)).shape == (2, 7)


def test_cnn_layout():
    model = create_model(option("model", "cnn"), act("relu"))
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [32, 64, 128, 128] and convs[0].kernel_size == (5, 5)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in model.modules()) == 2
    assert model(torch.zeros(3, 1, 48, 48)).shape == (3, 7)


def resnet_params(stem: int, widths: list[int], blocks: list[int]) -> int:
    """By hand: a 3×3 conv without bias and its BN (2 per channel) per conv; two per residual block; the head."""
    def conv_bn(i, o):
        return 9 * i * o + 2 * o
    total, ch = conv_bn(1, stem), stem
    for w, b in zip(widths, blocks, strict=True):
        total += conv_bn(ch, w) + 2 * b * conv_bn(w, w)
        ch = w
    return total + ch * 7 + 7


@pytest.mark.parametrize(("widths", "blocks"), [([32, 64, 128], [1, 1, 1]), ([16, 32], [0, 2])])
def test_resnet_scales_with_its_keys_and_takes_any_face_size(widths, blocks):
    """Sweeps scale the laptop model by width and depth; it trains on 40-px crops and tests on 48-px faces."""
    cfg = option("model", "resnet")
    cfg.widths, cfg.blocks = widths, blocks
    model = create_model(cfg, act("relu"))
    assert count_params(model)["params_total"] == resnet_params(cfg.stem, widths, blocks)
    assert sum(isinstance(m, ResidualBlock) for m in model.modules()) == sum(blocks)
    for side in (40, 48):
        assert model(torch.zeros(2, 1, side, side)).shape == (2, 7)


@pytest.mark.parametrize("target", ["cnn", "vgg16", "vgg19"])
@pytest.mark.parametrize("depth", [1, 2, 3, 5])
def test_dnn_matches_parameter_count_within_2_percent(target, depth):
    """`model.match` is solved when the config is checked, into the widths the model is built with."""
    cfg = validate(composed("model=dnn", f"model.match={target}", f"model.depth={depth}"))
    with torch.device("meta"):  # shapes and counts without allocating (a matched DNN of vgg19 has 20 M weights)
        want = count_params(create_model(option("model", target), act("relu")))["params_total"]
        model = create_model(cfg.model, act("relu"))
        got = count_params(model)["params_total"]
        assert abs(got - want) / want <= 0.02, (got, want)
        assert sum(isinstance(m, nn.Linear) for m in model.modules()) == depth + 1
        assert model(torch.zeros(2, 1, 48, 48)).shape == (2, 7)


TORCH_ACTIVATIONS = {"relu": nn.ReLU, "selu": nn.SELU, "leaky_relu": nn.LeakyReLU, "elu": nn.ELU, "gelu": nn.GELU}


@pytest.mark.parametrize("name", ACTIVATIONS.names())
@pytest.mark.parametrize("model_name", MODELS.names())
def test_every_activation_is_the_chosen_module(name, model_name):
    with torch.device("meta"):  # the modules and the output's shape, without allocating the weights
        model = create_model(option("model", model_name), act(name))
        acts = [m for m in model.modules() if isinstance(m, tuple(TORCH_ACTIVATIONS.values()))]
        assert acts and all(type(m) is TORCH_ACTIVATIONS[name] for m in acts)
        assert model(torch.zeros(2, 1, 48, 48)).shape == (2, 7)
        assert not any(getattr(m, "inplace", False) for m in acts)


def test_selu_uses_lecun_normal_and_alpha_dropout():
    model = create_model(option("model", "dnn"), act("selu"))
    assert any(isinstance(m, nn.AlphaDropout) for m in model.modules())
    assert not any(type(m) is nn.Dropout for m in model.modules())
    first = next(m for m in model.modules() if isinstance(m, nn.Linear))
    assert abs(first.weight.std().item() - first.in_features ** -0.5) < 0.05 * first.in_features ** -0.5
    assert torch.count_nonzero(first.bias) == 0


def test_leaky_relu_slope_is_used():
    model = create_model(option("model", "cnn"), act("leaky_relu", slope=0.2))
    assert all(m.negative_slope == 0.2 for m in model.modules() if isinstance(m, nn.LeakyReLU))
