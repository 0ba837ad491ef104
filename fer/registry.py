"""One registry per kind of option: the names a config key may take and what each name builds.

A registry is the only place an option's name is written in code (beside its `conf/<group>/<name>.yaml`):
validation, error messages, the report and the tests' parametrization all read the names from it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Generic, TypeVar

from fer.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """Named entries chosen by the config key `key` (`model.name`, `optim.name`, …), in the order given."""

    def __init__(self, key: str, entries: dict[str, T]):
        self.key = key
        self._entries = dict(entries)

    def names(self) -> tuple[str, ...]:
        return tuple(self._entries)

    def expected(self) -> str:
        return "one of " + ", ".join(self._entries)

    def get(self, name: str) -> T:
        """The entry for `name`; an unknown name is a ConfigError listing the registered ones."""
        if name not in self._entries:
            raise ConfigError(self.key, self.expected(), name)
        return self._entries[name]

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def items(self):
        return self._entries.items()

    def values(self):
        return self._entries.values()
