"""What the `python -m fer.<verb>` entry points share: one decorator stack that registers fer's schemas, composes
the config and ends bad input as one line (a finished run is brought back by fer/runs/restore.py)."""

from __future__ import annotations

import functools
import sys

import hydra

from fer.config.hydra_errors import reports_config_errors
from fer.config.options import CONFIG_PATH, register_configs
from fer.errors import guarded


def entry_point(config_name: str, schemas: dict[str, type] | None = None, takes_model_uri: bool = False):
    """`@entry_point("config")` over `main(cfg)`: registers fer's config schemas (and `schemas`, name → root
    schema) now, so Hydra finds them also in a launcher's worker; composes `conf/<config_name>.yaml` with the
    command line; and ends any FerError, Hydra's own composition errors included, as one `fer: error:` line
    and exit 2.

    With `takes_model_uri`, `model=models:/…` on the command line sets the key `model_uri`: Hydra would read
    `model=` as a choice of training's config group `model/`, which a command that restores a model has no use
    for."""
    register_configs(schemas)

    def decorate(main):
        # the commands that restore a finished run record nothing a stop could leave half done: a stop is one line
        composed = hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name=config_name)(
            guarded(main, say_stops=takes_model_uri))
        checked = reports_config_errors(composed)
        if not takes_model_uri:
            return checked

        @functools.wraps(checked)
        def with_model_uri():
            sys.argv = [f"model_uri={a.removeprefix('model=')}" if a.startswith("model=") else a for a in sys.argv]
            return checked()

        return with_model_uri

    return decorate
