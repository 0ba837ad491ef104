"""Bad configuration fails before anything trains, with a message naming the key and what was expected."""

from __future__ import annotations

import pytest
from conftest import composed, run_fer
from hydra.errors import ConfigCompositionException
from omegaconf.errors import ConfigKeyError, ValidationError

from fer.config import validate
from fer.errors import ConfigError


@pytest.mark.parametrize("group,options", [
    ("model", ["cnn", "vgg16", "vgg19", "dnn", "dnn_matched"]), ("act", ["relu", "selu", "leaky_relu", "elu", "gelu"]),
    ("data", ["synthetic", "fer2013", "hw3", "folder"]), ("norm", ["none", "unit", "symmetric", "standardize"]),
    ("aug", ["none", "keras", "strong"]), ("optim", ["adam", "adamax", "sgd"]),
    ("sched", ["none", "plateau", "cosine", "onecycle"]), ("trainer", ["default", "cpu", "gpu", "debug"]),
    ("tracking", ["local", "server"]), ("experiment", ["ablation", "activations", "cnn_vs_dnn", "hw3"])])
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
    ("data.val_fraction=1.5", "data.val_fraction"),
    ("trainer.max_epochs=0", "trainer.max_epochs"), ("label_smoothing=1.0", "label_smoothing"),
    ("model.name=resnet", "model.name"), ("aug.rotation=-5", "aug.rotation")])
def test_out_of_range_values_name_the_key(override, key):
    with pytest.raises(ConfigError) as e:
        validate(composed(override))
    assert f"'{key}'" in str(e.value) and "expected" in str(e.value)


def test_real_data_needs_a_path():
    with pytest.raises(ConfigError, match="data.path"):
        validate(composed("data=hw3", "data.path=null"))


def test_cli_unknown_option_lists_the_valid_ones(tmp_path):
    proc = run_fer("fer.train", "model=resnet50", cwd=tmp_path, check=False)
    assert proc.returncode != 0
    assert "model/resnet50" in proc.stderr and all(o in proc.stderr for o in ("cnn", "vgg16", "vgg19", "dnn"))
    assert not (tmp_path / "mlflow.db").exists()


def test_cli_bad_value_and_missing_file_are_one_line_errors(tmp_path):
    proc = run_fer("fer.train", "data.batch_size=-1", cwd=tmp_path, check=False)
    assert proc.returncode == 2 and "fer: error: config key 'data.batch_size'" in proc.stderr
    assert "Traceback" not in proc.stderr
    missing = tmp_path / "nowhere" / "fer2013.csv"
    proc = run_fer("fer.train", "data=fer2013", f"data.path={missing}", cwd=tmp_path, check=False)
    assert proc.returncode == 2 and str(missing) in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "mlflow.db").exists()
