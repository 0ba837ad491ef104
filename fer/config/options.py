"""Where fer's configs are once installed (the package `fer.conf`, which is the repo's conf/); registering what
Hydra needs besides them (the schemas, the help page); composing them outside an entry point: resuming a run,
sizing a DNN to another model, tests.

`--help` is Hydra's page with fer's option groups and nothing else: Hydra's own page lists every group it can
see, which includes the schemas fer registers to check each option (`schema/model/…`); here the groups are read
from conf/, where the options are."""

from __future__ import annotations

from importlib.resources import files

import hydra
from hydra import initialize_config_module
from hydra.core.config_store import ConfigStore
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig

from fer.config.schema import register_schemas

CONF_PACKAGE = "fer.conf"
CONFIG_PATH = f"pkg://{CONF_PACKAGE}"


FOOTER = "README.md says what each group and key does; --hydra-help shows Hydra's own options."


def option_groups() -> dict[str, list[str]]:
    """conf/<group>/<option>.yaml as {group: options}."""
    groups = {}
    for folder in files(CONF_PACKAGE).iterdir():
        if folder.is_dir() and folder.name not in ("hydra", "__pycache__"):
            groups[folder.name] = sorted(f.name.removesuffix(".yaml") for f in folder.iterdir()
                                         if f.name.endswith(".yaml"))
    return dict(sorted(groups.items()))


def register_help() -> None:
    """`hydra/help=fer` for the commands that compose fer's groups (train, bench), `hydra/help=fer_command` for
    those that restore a run (evaluate, predict, explain): the same page without the groups."""
    groups = "\n".join(f"  {group}: {', '.join(options)}" for group, options in option_groups().items())
    own = sorted(f.name.removesuffix(".yaml") for f in files(CONF_PACKAGE).joinpath("hydra", "launcher").iterdir()
                 if f.name.endswith(".yaml"))
    launchers = ", ".join(["basic", "joblib", *own])
    config = "== Config: every key=value you can set ==\n$CONFIG\n== Flags ==\n$FLAGS_HELP\n" + FOOTER
    usage = "${hydra.help.app_name} [key=value …]"
    cs = ConfigStore.instance()
    cs.store(group="hydra/help", name="fer", node={
        "app_name": "${hydra.job.name}", "header": "", "footer": "",
        "template": f"{usage.replace(' [', ' [group=option …] [', 1)}   (-m runs a sweep)\n\n"
                    f"== Option groups: group=option ==\n{groups}\n  hydra/launcher (with -m): {launchers}\n\n"
                    f"{config}"})
    cs.store(group="hydra/help", name="fer_command", node={
        "app_name": "${hydra.job.name}", "header": "", "footer": "", "template": f"{usage}\n\n{config}"})


def register_configs(schemas: dict[str, type] | None = None) -> None:
    """fer's schemas (and `schemas`, name → root schema) and help pages into Hydra's ConfigStore."""
    register_schemas(schemas)
    register_help()


def compose(config_name: str = "config", overrides: list[str] | None = None) -> DictConfig:
    """The config `conf/<config_name>.yaml` with `overrides`, as the entry point composes it (inside the running
    Hydra app if there is one)."""
    overrides = list(overrides or [])
    if GlobalHydra.instance().is_initialized():
        return hydra.compose(config_name, overrides=overrides)
    register_configs()
    with initialize_config_module(config_module=CONF_PACKAGE, version_base="1.3"):
        return hydra.compose(config_name, overrides=overrides)


def option(group: str, name: str) -> DictConfig:
    """What `<group>=<name>` sets: `conf/<group>/<name>.yaml` on its schema."""
    return compose("config", [f"{group}={name}"])[group]
