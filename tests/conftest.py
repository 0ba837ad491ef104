"""What pytest needs around the tests: the order the slow files run in; the fixtures (tests/shared_fixtures.py),
loaded only where tests run (they import torch, Lightning, MLflow and fer, ~6 s, which xdist's controller, running
no test, would pay at the suite's start and again at its end); and a quick exit once the tests are done."""

from __future__ import annotations

import gc

import pytest


def pytest_configure(config: pytest.Config) -> None:
    if hasattr(config, "workerinput") or not config.getoption("numprocesses", None):  # a worker, or no workers
        config.pluginmanager.import_plugin("shared_fixtures")


def pytest_unconfigure(config: pytest.Config) -> None:
    """The tests are done: what they left in memory is taken out of the garbage collector's reach, so pytest's five
    closing collections (for unraisable exceptions) and the interpreter's at exit do not walk it. A worker then
    exits in under a second instead of ~8, which the suite otherwise waits for."""
    gc.freeze()


def pytest_collection_modifyitems(items):
    """The files that hold slow tests first: xdist hands out tests (grouped by the xdist_group of a shared fixture)
    in this order, so the long ones start early and the short ones even out the workers' ends."""
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow_files)


