"""What a run is called and records about its config."""

from __future__ import annotations

import pytest
from helpers import composed

from fer.tracking.provenance import flatten, run_name


@pytest.mark.parametrize("overrides,name", [
    ((), "cnn-relu-standardize-none"),
    (("model=vgg19", "act=selu"), "vgg19-selu-standardize-none"),
    (("model=dnn", "model.match=vgg16", "norm=none", "aug=keras"), "dnn~vgg16-relu-none-keras"),
    (("run_name=mine",), "mine"),
])
def test_run_name_says_model_activation_normalization_and_augmentation(overrides, name):
    assert run_name(composed(*overrides)) == name


def test_params_are_the_resolved_config_as_dotted_keys():
    params = flatten(composed("optim=sgd", "model.channels=[8,16]"))
    assert params["optim.name"] == "sgd" and params["optim.lr"] == "0.01" and params["model.channels"] == "[8, 16]"
    assert params["explain.filters.steps"] == "200" and "hydra" not in {k.split(".")[0] for k in params}
