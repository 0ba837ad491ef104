"""End to end through `python -m fer.train`: what a finished run leaves in MLflow."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from helpers import CNN_ARGS, artifact_bytes, assert_complete_run, call_fer, composed, run_fer

from fer.data.synthetic import generate
from fer.labels import EMOTIONS
from fer.runs.train import LAPTOP_ACCURACY, recipe_hint

pytestmark = pytest.mark.xdist_group("cnn_run")  # on the worker that trains the shared run: none waits for it


def test_default_cnn_run_is_complete(cnn_run):
    cwd, client, run, proc = cnn_run
    assert_complete_run(client, run, epochs=2)
    assert run.info.run_name == "cnn-relu-standardize-none"
    assert run.info.run_id in proc.stdout and "test_acc" in proc.stdout
    assert "mlflow ui --backend-store-uri sqlite:///" in proc.stdout and "--host 127.0.0.1" in proc.stdout
    assert (cwd / "mlflow.db").exists() and (cwd / "mlruns").is_dir()
    assert run.data.tags["fer.command"] == "python -m fer.train " + " ".join(CNN_ARGS)
    assert "mlflow.source.git.commit" in run.data.tags and "fer.version.torch" in run.data.tags


def test_run_shows_in_the_ui_as_model_training_with_its_source_note_and_datasets(cnn_run):
    _, client, run, _ = cnn_run
    assert client.get_experiment(run.info.experiment_id).tags["mlflow.experimentKind"] == "custom_model_development"
    assert run.data.tags["mlflow.user"] and run.data.tags["mlflow.source.type"] == "LOCAL"
    assert run.data.tags["mlflow.source.name"].endswith("fer/train.py")
    note = run.data.tags["mlflow.note.content"]
    assert f"Test accuracy: **{run.data.metrics['test_acc']:.4f}**" in note and " ".join(CNN_ARGS) in note
    inputs = {i.dataset.name: i for i in run.inputs.dataset_inputs}
    assert list(inputs) == ["synthetic-train", "synthetic-val", "synthetic-test"]
    for name, context, rows in (("train", "training", 480), ("val", "validation", 160), ("test", "test", 160)):
        found = inputs[f"synthetic-{name}"]
        found_tags = {t.key: t.value for t in found.tags}
        assert found_tags["mlflow.data.context"] == context
        assert sum(json.loads(found_tags["fer.class_counts"])) == rows == int(run.data.params[
            f"data.rows_{'test_test' if name == 'test' else name}"])
        assert json.loads(found.dataset.source)["tags"]["generator"] == "fer.data.synthetic"


def test_confusion_matrix_matches_test_accuracy(cnn_run):
    _, client, run, _ = cnn_run
    doc = json.loads(artifact_bytes(client, run.info.run_id, "confusion_matrix.json"))
    counts = np.array(doc["counts"])
    assert doc["classes"] == list(EMOTIONS) and counts.shape == (7, 7)
    assert counts.sum() == int(run.data.params["data.rows_test_test"]) == 160
    assert abs(np.trace(counts) / counts.sum() - run.data.metrics["test_acc"]) < 1e-6
    rows = np.array(doc["normalized"])
    assert np.allclose(rows[counts.sum(1) > 0].sum(1), 1.0, atol=1e-4)
    md = artifact_bytes(client, run.info.run_id, "confused_pairs.md").decode()
    assert all(f"| {c} |" in md for c in EMOTIONS)


def test_standardize_uses_training_split_only(cnn_run):
    _, _, run, _ = cnn_run
    train = generate(480, seed=0).images / 255.0
    logged = float(run.data.params["norm.mean"])
    assert abs(logged - train.mean()) < 1e-9
    assert abs(float(run.data.params["norm.std"]) - train.std()) < 1e-9


def test_a_newcomer_on_the_real_csv_is_told_the_laptop_recipe():
    """Pointing fer at FER2013 with only a path trains the homework's CNN: one line names the better command."""
    plain = recipe_hint(composed("data=fer2013", "data.path=fer2013.csv"), ["data=fer2013", "data.path=fer2013.csv"])
    assert plain.startswith("note:") and "python -m fer.train experiment=laptop data.path=fer2013.csv" in plain
    assert LAPTOP_ACCURACY in plain
    for chosen in ("model=vgg16", "experiment=laptop"):  # a user who chose is not second-guessed
        assert recipe_hint(composed("data=fer2013", "data.path=x.csv"), ["data.path=x.csv", chosen]) is None
    assert recipe_hint(composed(), []) is None  # the embedded synthetic faces


def test_a_misspelt_key_is_said_before_torch_lightning_or_mlflow_is_imported(tmp_path):
    """A typo costs the user about half a second, not the ~6 s those imports take: fer.train imports its run only
    once Hydra has composed the config (`-X importtime` lists every module the process imported)."""
    proc = run_fer("fer.train", "trainer.max_epoch=3", cwd=tmp_path, check=False, fresh=True,
                   env={"PYTHONPROFILEIMPORTTIME": "1"})
    assert proc.returncode == 2 and proc.stdout == "", proc.stderr
    (line,) = [x for x in proc.stderr.splitlines() if x.startswith("fer:")]
    assert line.startswith("fer: error: config key 'trainer.max_epoch': expected one of the keys of trainer")
    imported = {x.rsplit("|", 1)[1].strip() for x in proc.stderr.splitlines() if x.startswith("import time:")}
    assert "omegaconf" in imported and not imported & {"torch", "pytorch_lightning", "mlflow"}


def test_a_command_keeps_the_garbage_collector_off_the_libraries_and_off_its_exit():
    """A run's full collections would walk every object torch, Lightning and MLflow made, and the interpreter's
    closing ones all the run's too (~2 s after its last line): each command (through its guard) freezes what exists
    when it starts, and what it made as its last exit handler, after its own."""
    code = ("import atexit, gc; from fer.errors import guarded; "
            "atexit.register(lambda: print('after', gc.get_freeze_count())); "
            "made = []; "
            "command = lambda: (print('started', gc.get_freeze_count()), made.extend([] for _ in range(1000)), "
            "atexit.register(lambda: print('before', gc.get_freeze_count()))); "
            "guarded(command)()")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    counts = dict(line.split() for line in proc.stdout.splitlines())
    started, before, after = int(counts["started"]), int(counts["before"]), int(counts["after"])
    assert started > 0 and before < started + 1000  # the command's own 1000 lists: not frozen while it runs
    assert after >= before + 1000  # but at its exit


@pytest.mark.parametrize("command", ["fer.train", "fer.evaluate"])
def test_help_lists_the_option_groups_not_the_schemas(command, tmp_path):
    proc = call_fer(command, "--help", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "schema" not in proc.stdout and proc.stdout.startswith(f"python -m {command} [")
    if command == "fer.train":
        assert "\n  model: cnn, dnn, dnn_matched, resnet, vgg16, vgg19\n" in proc.stdout
        assert "\n  hydra/launcher (with -m): basic, joblib, slurm, slurm_local\n" in proc.stdout
    else:
        assert "Option groups" not in proc.stdout and "run_id: null" in proc.stdout
