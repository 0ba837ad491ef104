"""Bad configuration fails before anything trains, with a message naming the key and what was expected."""

from __future__ import annotations

import os

import pytest
from conftest import call_fer, composed
from hydra.errors import ConfigCompositionException
from omegaconf.errors import ConfigKeyError, ValidationError

from fer.config import reports_config_errors, validate
from fer.errors import ConfigError


@pytest.mark.parametrize("group,options", [
    ("model", ["cnn", "vgg16", "vgg19", "dnn", "dnn_matched"]), ("act", ["relu", "selu", "leaky_relu", "elu", "gelu"]),
    ("data", ["synthetic", "fer2013", "hw3", "folder"]), ("norm", ["none", "unit", "symmetric", "standardize"]),
    ("aug", ["none", "keras", "strong"]), ("optim", ["adam", "adamax", "sgd"]),
    ("sched", ["none", "plateau", "cosine", "onecycle"]), ("trainer", ["default", "cpu", "gpu", "ddp", "debug"]),
    ("tracking", ["local", "server"]), ("experiment", ["ablation", "activations", "cnn_vs_dnn", "hw3", "sota"])])
def test_every_option_composes_and_validates(group, options):
    for option in options:
        extra = ["data.path=x"] if group == "data" and option != "synthetic" else []
        cfg = composed(f"{group}={option}", *extra)
        if group == "experiment":  # a study names its MLflow experiment and what its sweep varies
            assert cfg.tracking.experiment == option
        else:
            assert cfg[group].name == option.removesuffix("_matched")
        validate(cfg)


def test_typo_in_a_key_is_rejected():
    with pytest.raises(ConfigCompositionException) as e:
        composed("model.hiden=3")
    assert "hiden" in str(e.value.__cause__) or "hiden" in str(e.value)


def test_wrong_type_names_the_key():
    with pytest.raises(ConfigCompositionException) as e:
        composed("optim.lr=abc")
    cause = e.value.__cause__
    assert isinstance(cause, ValidationError | ConfigKeyError) and "optim.lr" in str(cause)


@pytest.mark.parametrize("override,key", [
    ("data.batch_size=-1", "data.batch_size"), ("optim.lr=0", "optim.lr"),
    ("data.val_fraction=1.5", "data.val_fraction"), ("trainer.strategy=fsdp", "trainer.strategy"),
    ("trainer.max_epochs=0", "trainer.max_epochs"), ("label_smoothing=1.0", "label_smoothing"),
    ("model.name=resnet", "model.name"), ("aug.rotation=-5", "aug.rotation")])
def test_out_of_range_values_name_the_key(override, key):
    with pytest.raises(ConfigError) as e:
        validate(composed(override))
    assert f"'{key}'" in str(e.value) and "expected" in str(e.value)


def test_real_data_needs_a_path():
    with pytest.raises(ConfigError, match="data.path"):
        validate(composed("data=hw3", "data.path=null"))


def test_hydra_full_error_is_set_for_the_call_only(monkeypatch):
    """fer turns Hydra's composition errors into one line (tests/test_bad_input.py) by having Hydra raise them:
    HYDRA_FULL_ERROR=1 during the call, as it was afterwards."""
    seen = []

    @reports_config_errors
    def main():
        seen.append(os.environ.get("HYDRA_FULL_ERROR"))
        return 3

    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    assert main() == 3 and "HYDRA_FULL_ERROR" not in os.environ
    monkeypatch.setenv("HYDRA_FULL_ERROR", "0")
    assert main() == 3 and os.environ["HYDRA_FULL_ERROR"] == "0"
    assert seen == ["1", "1"]


def test_hydra_full_error_still_shows_hydras_trace(tmp_path, monkeypatch):
    monkeypatch.setenv("HYDRA_FULL_ERROR", "1")
    with pytest.raises(ConfigCompositionException) as e:
        call_fer("fer.train", "optim.lr=abc", cwd=tmp_path)
    assert "optim.lr" in str(e.value.__cause__)
