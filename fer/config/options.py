"""Where fer's configs are once installed (the package `fer.conf`, which is the repo's conf/), and composing
them outside an entry point: resuming a run, sizing a DNN to another model, tests."""

from __future__ import annotations

import hydra
from hydra import initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig

from fer.config.schema import register_schemas

CONF_PACKAGE = "fer.conf"
CONFIG_PATH = f"pkg://{CONF_PACKAGE}"


def compose(config_name: str = "config", overrides: list[str] | None = None) -> DictConfig:
    """The config `conf/<config_name>.yaml` with `overrides`, as the entry point composes it (inside the running
    Hydra app if there is one)."""
    overrides = list(overrides or [])
    if GlobalHydra.instance().is_initialized():
        return hydra.compose(config_name, overrides=overrides)
    register_schemas()
    with initialize_config_module(config_module=CONF_PACKAGE, version_base="1.3"):
        return hydra.compose(config_name, overrides=overrides)


def option(group: str, name: str) -> DictConfig:
    """What `<group>=<name>` sets: `conf/<group>/<name>.yaml` on its schema."""
    return compose("config", [f"{group}={name}"])[group]
