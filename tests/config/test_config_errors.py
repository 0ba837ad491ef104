"""Bad configuration fails before anything trains, with a message naming the key and what was expected."""

from __future__ import annotations

import os
from importlib.resources import files

import pytest
from helpers import call_fer, composed
from hydra.errors import ConfigCompositionException
from omegaconf.errors import ConfigKeyError, ValidationError

from fer.config.hydra_errors import reports_config_errors
from fer.config.options import CONF_PACKAGE
from fer.data.augment import AUGMENTATIONS
from fer.data.load import DATASETS
from fer.errors import ConfigError
from fer.models import MODELS
from fer.models.act import ACTIVATIONS
from fer.models.norm import NORMS
from fer.runs.validate import validate
from fer.training.optim import OPTIMIZERS, SCHEDULES
from fer.training.trainer import STRATEGIES
from fer.training.tta import TTA_MODES

GROUPS = sorted(p.name for p in files(CONF_PACKAGE).iterdir() if p.is_dir() and not p.name.startswith("_"))
OPTIONS = [(g, p.name.removesuffix(".yaml")) for g in GROUPS for p in sorted(files(CONF_PACKAGE).joinpath(g).iterdir(),
                                                                              key=lambda p: p.name)
           if p.name.endswith(".yaml")]
REGISTRIES = {"model": MODELS, "act": ACTIVATIONS, "data": DATASETS, "norm": NORMS, "optim": OPTIMIZERS,
              "sched": SCHEDULES}


def option_config(group: str, option: str):
    paths = ["data.path=x", *(["data.labels=y"] if option == "ferplus" else [])] if group == "data" else []
    crops = ["model=resnet"] if (group, option) == ("aug", "crop_flip") else []  # the cnn takes 48-px faces only
    return composed(f"{group}={option}", *paths, *crops)


@pytest.mark.parametrize("group,option", OPTIONS)
def test_every_option_composes_and_validates(group, option):
    cfg = option_config(group, option)
    if group == "experiment":  # a study names its MLflow experiment and what its sweep varies
        assert cfg.tracking.experiment == option
    elif group != "hparams_search":
        assert cfg[group].name == option.removesuffix("_matched")
    validate(cfg, on_this_machine=False)  # trainer=gpu is valid for a GPU machine


@pytest.mark.parametrize("group", REGISTRIES)
def test_each_registered_name_has_a_yaml_and_each_yaml_a_registered_name(group):
    """One place to add an option: its yaml and its entry in the group's registry; neither without the other."""
    in_yaml = {option_config(group, option)[group].name for g, option in OPTIONS if g == group}
    assert in_yaml == set(REGISTRIES[group].names())


@pytest.mark.parametrize("registry", [*REGISTRIES.values(), AUGMENTATIONS, TTA_MODES, STRATEGIES],
                         ids=lambda r: r.key)
def test_an_unregistered_name_is_refused_listing_the_registered_ones(registry):
    overrides = [f"{registry.key}=bogus", *(["data.path=x"] if registry.key.startswith("data.") else [])]
    with pytest.raises(ConfigError) as e:
        validate(composed(*overrides))
    assert str(e.value) == f"config key '{registry.key}': expected one of {', '.join(registry)}, got 'bogus'"


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
    ("model.name=resnet50", "model.name"), ("aug.rotation=-5", "aug.rotation"),
    ("trainer.budget_min=0", "trainer.budget_min"), ("aug.crop_size=4", "aug.crop_size"),
    ("sched.anneal=step", "sched.anneal"), ("model=resnet model.blocks=[1,1]", "model.blocks"),
    ("aug=crop_flip", "aug.crop_size"), ("test.tta=tencrop_inner", "test.tta"),
    ("tracking.final_wait_s=-1", "tracking.final_wait_s")])
def test_out_of_range_values_name_the_key(override, key):
    with pytest.raises(ConfigError) as e:
        validate(composed(*override.split()))
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
