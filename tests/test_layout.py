"""The layout is the architecture: every module says why it exists, rooms import only the rooms below them, the
distribution lists every package, and importing fer changes nothing a reader would have to know about."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib

REPO = Path(__file__).resolve().parents[1]
MODULES = sorted(p for p in [*(REPO / "fer").rglob("*.py"), *(REPO / "hydra_plugins").rglob("*.py")])

# Lowest first: a module may import fer modules of its own rank or lower.
RANKS = [
    ("fer", "fer.console", "fer.environment", "fer.errors", "fer.labels", "fer.registry", "fer.stops", "fer.config.",
     "fer.tracking.tags"),
    ("fer.data.", "fer.models."),
    ("fer.training.",),
    ("fer.explain.",),
    ("fer.artifacts.",),
    ("fer.tracking.",),
    ("fer.runs.",),
    ("fer.sweeps.",),
    ("fer.cli", "fer.train", "fer.evaluate", "fer.predict", "fer.report", "fer.delivery", "fer.explain.__main__",
     "fer.bench.", "fer.demo.", "hydra_plugins."),
]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def rank(name: str) -> int:
    """The rank of the most specific entry naming `name` (a module, or a room by its dotted prefix)."""
    found = [(len(entry), i) for i, entries in enumerate(RANKS) for entry in entries
             if name == entry or (entry.endswith(".") and f"{name}.".startswith(entry))]
    assert found, f"{name} is in no room of RANKS"
    return max(found)[1]


def is_module(name: str) -> bool:
    path = REPO.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def fer_imports(path: Path) -> set[str]:
    """The fer modules `path` imports, anywhere in it (`from fer.tracking import tags` is fer.tracking.tags)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "fer":
            found |= {f"{node.module}.{a.name}" if is_module(f"{node.module}.{a.name}") else node.module
                      for a in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "fer"}
    return found


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_module_says_why_it_exists(path):
    doc = ast.get_docstring(ast.parse(path.read_text()))
    assert doc and len(doc.split()) >= 5, path


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(REPO)))
def test_rooms_import_only_rooms_below_them(path):
    own = module_name(path)
    upward = sorted(m for m in fer_imports(path) if rank(m) > rank(own))
    assert not upward, f"{own} (rank {rank(own)}) imports {upward}"


def test_the_distribution_lists_every_package_and_ships_the_configs():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    setuptools = project["tool"]["setuptools"]
    packages = {module_name(p) for p in REPO.glob("fer/**/__init__.py")} | {
        module_name(p) for p in REPO.glob("hydra_plugins/*/__init__.py")} | {"fer.conf", "hydra_plugins"}
    assert set(setuptools["packages"]) == packages
    assert setuptools["package-dir"] == {"fer.conf": "conf"}
    assert set(setuptools["package-data"]["fer.conf"]) == {"*.yaml", "*/*.yaml", "*/*/*.yaml"}  # hydra/launcher/
    assert not list((REPO / "conf").glob("*/*/*/*.yaml"))  # deeper files would not be shipped
    assert project["project"]["name"] != "fer"  # that name on the package registry is another project


def test_importing_fer_changes_no_environment_variable():
    code = ("import os, importlib, pkgutil, torch, torch._inductor, mlflow, pytorch_lightning, hydra, captum, kornia; "
            "before = dict(os.environ); import fer; "
            "[importlib.import_module(m.name) for m in pkgutil.walk_packages(fer.__path__, 'fer.')]; "
            "changed = {k for k in before.keys() | os.environ.keys() if before.get(k) != os.environ.get(k)}; "
            "print(sorted(changed))")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "HYDRA_"))}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300,
                         cwd=REPO)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
