"""Hydra's composition errors (an unknown option or key, a value of the wrong type) as one `fer: error:` line."""

from __future__ import annotations

import dataclasses
import functools
import os
import re
import shlex
import typing
from pathlib import Path

from hydra.errors import (
    ConfigCompositionException,
    InstantiationException,
    MissingConfigException,
    OverrideParseException,
)
from omegaconf import DictConfig
from omegaconf.errors import ConfigAttributeError, ConfigKeyError, OmegaConfBaseException, ValidationError

from fer.environment import restored
from fer.errors import ConfigError, FerError, guarded

_TYPE_NAMES = {int: ("an integer", "integers"), float: ("a number", "numbers"), bool: ("true or false", "booleans"),
               str: ("a string", "strings")}


def unknown_key(full_key: str, names) -> ConfigError:
    parent = full_key.rpartition(".")[0] or "the config"
    return ConfigError(full_key, f"one of the keys of {parent} ({', '.join(names)})", full_key.rpartition(".")[2])


def type_name(tp, plural: bool = False) -> str:
    """How a schema type reads in an error: `list[int]` → 'a list of integers', `int | None` → '… or null'."""
    args = typing.get_args(tp)
    if typing.get_origin(tp) is list:
        return "a list of " + type_name(args[0], plural=True) if args else "a list"
    if type(None) in args and len(args) == 2:
        return type_name(next(a for a in args if a is not type(None)), plural) + " or null"
    return _TYPE_NAMES.get(tp, ("a value", "values"))[plural]


def hydra_quoted(value: str) -> str:
    """`value` as a quoted string of Hydra's override grammar, which reads back exactly as `value`."""
    quote = "'" if "'" not in value or '"' in value else '"'
    doubled = re.sub(rf"(\\+)(?={quote}|$)", lambda m: m[1] * 2, value)  # backslashes before a quote or the end
    return quote + doubled.replace(quote, "\\" + quote) + quote


def shell_word(override: str) -> str:
    """`key=value` with the value quoted for Hydra, quoted again for the shell that passes it on."""
    key, _, value = override.partition("=")
    word = f"{key}={hydra_quoted(value)}"
    return '"' + word.replace('"', '\\"') + '"' if not re.search(r"[$`\\!]", word) else shlex.quote(word)


def unquoted(override: str) -> ConfigError:
    """An override whose value Hydra's grammar cannot read unquoted (a path with spaces and brackets, non-ASCII
    letters, `=`, `~`, `#`, `&`, a comma …): the exact form that passes it as one string."""
    key, _, value = override.partition("=")
    return ConfigError(key, f"a value Hydra's override grammar reads; to pass this one as it is, write "
                            f"{shell_word(override)}", value)


def comma_sweeps(overrides) -> None:
    """Under -m, an unquoted comma sweeps: a path that holds one (and exists, while its pieces do not) would be
    tried piece by piece. ConfigError with the exact form that passes it as one path."""
    for override in overrides:
        key, sep, value = override.partition("=")
        if not sep or "," not in value or value[:1] in "'\"[(" or not Path(value).expanduser().exists():
            continue
        pieces = value.split(",")
        if not all(Path(piece).expanduser().exists() for piece in pieces):
            raise ConfigError(key, f"one path (under -m a comma sweeps over {' and '.join(map(repr, pieces))}); to "
                                   f"pass this one as it is, write {shell_word(override)}", value)


def composition_error(e: Exception) -> FerError:
    """What Hydra reports in several lines, as one."""
    if isinstance(e, MissingConfigException) and e.options:
        group, _, name = e.missing_cfg_file.rpartition("/")
        return ConfigError(group, "one of " + ", ".join(e.options), name)
    if isinstance(e, OverrideParseException):
        return unquoted(e.override)
    if ambiguous := re.match(r"Ambiguous value for argument '(.*)'\n", str(e)):  # a comma outside a sweep
        return unquoted(ambiguous[1])
    cause = e.__cause__
    if isinstance(cause, OmegaConfBaseException) and cause.full_key:
        owner, parent = cause.object_type, cause.parent_node
        if isinstance(cause, ConfigAttributeError | ConfigKeyError):
            if dataclasses.is_dataclass(owner):
                return unknown_key(cause.full_key, [f.name for f in dataclasses.fields(owner)])
            if isinstance(parent, DictConfig):
                return unknown_key(cause.full_key, [str(k) for k in parent if k != "hydra"])
        if isinstance(cause, ValidationError):
            if dataclasses.is_dataclass(owner):
                tp = typing.get_type_hints(owner).get(cause.key)
            else:  # an element of a typed list
                tp = (typing.get_args(cause.ref_type) or [None])[0]
            return ConfigError(cause.full_key, type_name(tp), cause.value)
    text = f"{e}\n{cause or ''}"
    return FerError("; ".join(line.strip() for line in text.splitlines() if line.strip()))


def reports_config_errors(main):
    """Wrap a `@hydra.main` entry point so a bad override stops with one `fer: error:` line and exit 2, like
    every other bad input, instead of Hydra's several lines and exit 1.

    Hydra raises instead of printing while HYDRA_FULL_ERROR=1; a user who sets it keeps Hydra's full trace.
    """

    @guarded
    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            return main(*args, **kwargs)
        try:
            with restored("HYDRA_FULL_ERROR", "1"):
                return main(*args, **kwargs)
        except (ConfigCompositionException, OverrideParseException) as e:
            raise composition_error(e) from None
        except InstantiationException as e:  # a plugin (the Optuna sweeper) refused its config
            if isinstance(e.__cause__, FerError):
                raise e.__cause__ from None
            raise

    return wrapper
