"""Same config and seed on CPU, the same run: identical metrics epoch by epoch, a record of how to make it again
(the exact command, the git commit, the package versions), a checkpoint that loads without unpickling code, and a
UI command bound to loopback."""

from __future__ import annotations

import ast
import shlex
import shutil
import subprocess
import tempfile
from importlib import metadata
from pathlib import Path
from unittest import mock

import pytest
import torch
from helpers import call_fer, run_fer, store

from fer.runs.restore import restore
from fer.tracking.provenance import PACKAGES

# Every source of randomness a CPU run has: shuffled batches, dropout, and each kornia augmentation (crop, flip,
# rotation, shift, shear, zoom, erasing), under a schedule that changes the learning rate every step; the cnn
# narrowed to keep it quick.
ARGS = ["model.channels=[8,16,16,16]", "model.hidden=32", "data.n_train=128", "data.n_val=64", "data.n_test=64",
        "data.batch_size=32", "trainer=cpu", "trainer.max_epochs=3", "trainer.progress_bar=false", "aug=keras",
        "aug.crop_padding=2", "aug.erasing=0.5", "sched=onecycle", "explain=none", "seed=7"]
EPOCH_METRICS = ("train_loss", "train_acc", "val_loss", "val_acc", "val_f1", "lr")
ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.xdist_group("twice")  # one worker runs the module's two runs


@pytest.fixture(scope="module")
def twice(tmp_path_factory, empty_store):
    """The same command run in a fresh process, then again in this one (after other runs), into one store;
    the second run records every torch.load it makes."""
    cwd = tmp_path_factory.mktemp("twice")
    shutil.copy(empty_store, cwd / "mlflow.db")
    first = run_fer("fer.train", *ARGS, cwd=cwd)
    with mock.patch("torch.load", wraps=torch.load) as loads:
        second = call_fer("fer.train", *ARGS, cwd=cwd)
    assert second.returncode == 0, second.stderr
    client = store(cwd)
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()], order_by=["start_time ASC"])
    assert len(runs) == 2
    return cwd, client, runs, (first, second), loads


@pytest.mark.slow
def test_same_config_and_seed_give_identical_metrics(twice):
    _, client, runs, _, _ = twice
    a, b = runs
    assert set(a.data.metrics) == set(b.data.metrics) and set(EPOCH_METRICS) < set(a.data.metrics)
    for key in a.data.metrics:
        history = [[(m.step, m.value) for m in sorted(client.get_metric_history(r.info.run_id, key),
                                                      key=lambda m: m.step)] for r in runs]
        assert history[0] == history[1], key
    losses = [m.value for m in client.get_metric_history(a.info.run_id, "train_loss")]
    assert len(losses) == 3 and len(set(losses)) == 3  # it trained: every epoch differs


@pytest.mark.slow
def test_run_records_command_commit_and_versions(twice):
    _, _, runs, _, _ = twice
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    for run in runs:
        tags = run.data.tags
        assert shlex.split(tags["fer.command"]) == ["python", "-m", "fer.train", *ARGS]  # as a shell reads it
        assert tags["mlflow.source.git.commit"] == (head or "unknown")
        if head:  # a run from edited code says so: its commit alone does not reproduce it
            dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                                   capture_output=True, text=True).stdout.strip()
            assert tags["fer.git.dirty"] == str(bool(dirty))
        for pkg in PACKAGES:
            assert tags[f"fer.version.{pkg}"] == metadata.version(pkg)


@pytest.mark.slow
def test_checkpoint_loads_as_weights_only(twice):
    _, client, runs, _, loads = twice
    run_id = runs[1].info.run_id
    with tempfile.TemporaryDirectory() as tmp:
        path = client.download_artifacts(run_id, runs[1].data.tags["fer.checkpoint"], tmp)
        state = torch.load(path, map_location="cpu", weights_only=True)["state_dict"]
    assert loads.call_args_list, "testing the best checkpoint loads it"
    assert all(call.kwargs.get("weights_only") is True for call in loads.call_args_list)
    with mock.patch("torch.load", wraps=torch.load) as restoring:
        module = restore(client.tracking_uri, run_id)[1].module
    assert [call.kwargs.get("weights_only") for call in restoring.call_args_list] == [True]
    for key, value in module.state_dict().items():
        assert torch.equal(value, state[key]), key


def unsafe_loads(source: str) -> list[str]:
    """Calls in `source` that could unpickle: torch.load or a Trainer call given a checkpoint without
    weights_only=True, np.load(allow_pickle=True), and any use of pickle, load_from_checkpoint or mlflow.pytorch
    but one: `mlflow.pytorch.log_model` with serialization_format="pt2" (torch.export: loading runs no pickle)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import | ast.ImportFrom):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            found += [m for m in modules if m.split(".")[0] == "pickle" or m.startswith("mlflow.pytorch")]
        if not isinstance(node, ast.Call):
            continue
        name = ast.unparse(node.func)
        keys = {k.arg for k in node.keywords}
        const = {k.arg: k.value.value for k in node.keywords if isinstance(k.value, ast.Constant)}
        checkpoint = "ckpt_path" in keys and not ("ckpt_path" in const and const["ckpt_path"] is None)
        exported = name == "mlflow.pytorch.log_model" and const.get("serialization_format") == "pt2"
        if ((name == "torch.load" or checkpoint) and const.get("weights_only") is not True) \
                or const.get("allow_pickle") is True or name.endswith("load_from_checkpoint") \
                or name.startswith(("pickle.", "mlflow.pytorch.")) and not exported:
            found.append(ast.unparse(node))
    return found


def test_no_code_unpickles_checkpoints_or_tracked_data():
    assert sorted(unsafe_loads("torch.load(p)\nt.test(m, ckpt_path='best')\nnp.load(p, allow_pickle=True)\n"
                               "M.load_from_checkpoint(p)\nimport pickle\nt.fit(m, ckpt_path=None)\n"
                               "torch.load(p, weights_only=True)\n"
                               "mlflow.pytorch.log_model(m, serialization_format='pt2')\nmlflow.pytorch.log_model(m)\n"
                               "mlflow.pytorch.load_model(u)")) == [
        "M.load_from_checkpoint(p)", "mlflow.pytorch.load_model(u)", "mlflow.pytorch.log_model(m)",
        "np.load(p, allow_pickle=True)", "pickle", "t.test(m, ckpt_path='best')", "torch.load(p)"]
    for path in sorted((ROOT / "fer").rglob("*.py")):
        assert unsafe_loads(path.read_text()) == [], path


@pytest.mark.slow
def test_printed_ui_command_binds_loopback(twice):
    cwd, _, _, procs, _ = twice
    for proc in procs:
        command = next(line for line in proc.stdout.splitlines() if line.startswith("fer: open it with: "))
        assert command.endswith(f"mlflow ui --backend-store-uri sqlite:///{cwd}/mlflow.db --host 127.0.0.1 "
                                "--port 5000"), command
        assert "http://127.0.0.1:5000/#/experiments/" in proc.stdout and "0.0.0.0" not in proc.stdout
