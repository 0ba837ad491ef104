"""fer as a user of the package registry gets it: a wheel built from a clean copy of the repo, installed (not
editable) in a fresh venv, run from an empty folder: every config and the demo page shipped; a sweep (one job with
every explanation), a prediction from a finished run and the report working."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from helpers import write_photos

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow  # a wheel, a venv and every command as a process


def run(*args, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})})
    assert proc.returncode == 0, f"{args} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


def only_fer_lines(proc: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    """No library's warning or log line on the terminal: every line is fer's own."""
    foreign = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip() and
               not line.startswith("fer: ")]
    assert not foreign, "\n".join(foreign)
    return proc


@pytest.fixture(scope="module")
def venv_python(tmp_path_factory) -> Path:
    """A fresh venv holding its own fer, from the wheel, that also sees this environment's packages (torch, mlflow,
    …) behind its own, as `--system-site-packages` would when this environment is the system's."""
    root = tmp_path_factory.mktemp("wheel")
    source = root / "source"
    listed = run("git", "ls-files", "-z", "--cached", "--others", "--exclude-standard", cwd=REPO).stdout
    for name in filter(None, listed.split("\0")):
        if (REPO / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, source / name)
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", root / "dist", source,
        cwd=root)
    (wheel,) = (root / "dist").glob("fer_lab-*.whl")
    run(sys.executable, "-m", "venv", "--without-pip", root / "venv", cwd=root)  # this pip installs into it
    python = root / "venv" / "bin" / "python"
    (own_site,) = (root / "venv" / "lib").glob("python*/site-packages")
    outer = dict.fromkeys(sysconfig.get_paths()[key] for key in ("purelib", "platlib"))
    (own_site / "outer-environment.pth").write_text("".join(f"import site; site.addsitedir({p!r})\n" for p in outer))
    run(sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index", "-q", wheel, cwd=root)
    return python


def test_installed_wheel_ships_every_config_and_its_commands_run_from_an_empty_folder(venv_python, tmp_path):
    shipped = ("import fer, fer.conf, importlib.resources as r, pathlib; print(fer.__file__, fer.conf.__file__); "
               "conf = pathlib.Path(str(r.files('fer.conf'))); "
               "print(*sorted(str(p.relative_to(conf)) for p in conf.rglob('*.yaml'))); "
               "print(r.files('fer.demo').joinpath('page.html').is_file())")
    where, configs, page = run(venv_python, "-c", shipped, cwd=tmp_path).stdout.splitlines()
    site = venv_python.parents[1] / "lib"
    assert all(Path(p).is_relative_to(site) for p in where.split()), where  # this fer, not the checkout's
    assert configs.split() == sorted(str(p.relative_to(REPO / "conf")) for p in (REPO / "conf").rglob("*.yaml"))
    assert page == "True"  # every command's config and every option, groups two folders deep too; the demo's page

    sweep = only_fer_lines(run(venv_python, "-m", "fer.train", "-m", "explain=default,none", "data.limit=64",
                               "trainer.max_epochs=1", "trainer.progress_bar=false", "explain.filters.steps=20",
                               "explain.filters.n=4", "explain.layer_outputs.n=4", cwd=tmp_path))
    # a job with every explanation (a short gradient ascent of four filters), one without
    assert sweep.stdout.count(" finished: ") == 2 and "comparison in the parent run" in sweep.stdout
    assert sweep.stdout.count("fer: open it with: mlflow ui") == 1 and "fer: the homework's answers from it: " \
        "python -m fer.report " in sweep.stdout  # once for the sweep, not once a job
    assert (tmp_path / "mlflow.db").is_file() and (tmp_path / "mlruns").is_dir()
    run_id = next(line.split("(")[1].split(")")[0] for line in sweep.stdout.splitlines() if " finished: " in line)

    photos = write_photos(tmp_path / "photos")
    predicted = run(venv_python, "-m", "fer.predict", f"run_id={run_id}", "images=photos", cwd=tmp_path)
    assert len((tmp_path / "predictions" / "predictions.csv").read_text().splitlines()) == 1 + sum(photos.values())
    only_fer_lines(predicted)
    report = only_fer_lines(run(venv_python, "-m", "fer.report", "fer", cwd=tmp_path))
    assert "logged to sweep run" in report.stdout and (tmp_path / "report.html").stat().st_size > 10_000
