"""What pytest needs before it collects: the order the slow files run in, and the fixtures (tests/shared_fixtures.py)
loaded only where tests run. They import torch, Lightning, MLflow and fer (~6 s); xdist's controller, which runs no
test, would otherwise pay that at the suite's start and again tearing it down at the end."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    if hasattr(config, "workerinput") or not config.getoption("numprocesses", None):  # a worker, or no workers
        config.pluginmanager.import_plugin("shared_fixtures")


def pytest_collection_modifyitems(items):
    """The files that hold slow tests first: xdist hands out tests (grouped by the xdist_group of a shared fixture)
    in this order, so the long ones start early and the short ones even out the workers' ends."""
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow_files)


