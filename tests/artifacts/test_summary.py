"""The model summary every run logs: Keras's table of layers, shapes and counts, for the model the config names."""

from __future__ import annotations

from helpers import composed, vgg_params
from omegaconf import OmegaConf

from fer.artifacts.summary import model_summary
from fer.training.module import FERModule


def test_summary_shows_the_configured_model_activation_and_dropout():
    module = FERModule(OmegaConf.to_container(composed("model=vgg19", "act=selu"), resolve=True), ["test"])
    summary = model_summary(module)
    assert "SELU" in summary and "AlphaDropout" in summary and "ReLU" not in summary
    assert f"Total params: {vgg_params(19, 512):,}" in summary and "Output Shape" in summary
    assert "(None, 512, 1, 1)" in summary  # five 2×2 pools take 48 px to 1
