"""Errors a user can act on, how a command ends because of them, and the guard that prints them as one line."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import TypeVar

F = TypeVar("F", bound=Callable)

EXIT_BAD_INPUT = 2
# Exit codes of a process ended by SIGINT / SIGTERM, as a shell reports them.
EXIT_CODES = {"Ctrl-C": 130, "SIGTERM": 143}


class FerError(Exception):
    """Bad input or configuration: the message alone tells the user what to fix."""


class DataError(FerError):
    """A data file that is missing, malformed or holds values out of range."""

    def __init__(self, path, problem: str, line: int | None = None):
        where = f"{path}:{line}" if line is not None else f"{path}"
        super().__init__(f"{where}: {problem}")
        self.path, self.line, self.problem = path, line, problem


class ConfigError(FerError):
    """A config key whose value cannot be used."""

    def __init__(self, key: str, expected: str, got):
        super().__init__(f"config key '{key}': expected {expected}, got {got!r}")
        self.key = key


def guarded(fn: F) -> F:
    """Print a FerError as `fer: error: …` and exit 2 instead of showing a traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except FerError as e:
            print(f"fer: error: {e}", file=sys.stderr, flush=True)
            sys.exit(EXIT_BAD_INPUT)

    return wrapper  # type: ignore[return-value]
