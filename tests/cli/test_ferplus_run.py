"""`python -m fer.train data=ferplus …` end to end on tiny files the test writes: eight classes everywhere a user
reads them (metrics, confusion matrix, datasets, the MLflow Model, fer.predict), the votes evaluated, and the
faces FER+ leaves out recorded in the run."""

from __future__ import annotations

import csv
import json
import shutil

import mlflow
import numpy as np
import pytest
from helpers import QUICK, artifact_bytes, call_fer, only_run, save, write_fer_csv, write_ferplus

from fer.data.synthetic import generate
from fer.labels import FERPLUS_EMOTIONS

SPLITS = {"Training": 320, "PublicTest": 80, "PrivateTest": 80}
pytestmark = pytest.mark.xdist_group("ferplus_run")  # one worker trains the module's run

NOT_A_FACE = 6  # the first rows of each split get ten NF votes


def ferplus_files(folder):
    """Synthetic faces of the eight FER+ classes: seven votes for the face's class and three for another, except
    NOT_A_FACE rows per split marked not a face."""
    rng = np.random.default_rng(0)
    usages, images, votes = [], [], []
    for k, (usage, n) in enumerate(SPLITS.items()):
        split = generate(n, seed=k, classes=FERPLUS_EMOTIONS)
        for i, label in enumerate(split.labels):
            row = np.zeros(10, int)
            if i < NOT_A_FACE:
                row[9] = 10
            else:
                row[label] = 7
                row[(label + 1 + rng.integers(7)) % 8] = 3
            usages.append(usage)
            votes.append(row.tolist())
        images.append(split.images)
    pixels = write_fer_csv(folder / "fer2013.csv", np.concatenate(images), [0] * len(usages), usages)
    return pixels, write_ferplus(folder / "fer2013new.csv", usages, votes)


@pytest.fixture(scope="module")
def ferplus_run(tmp_path_factory, empty_store):
    cwd = tmp_path_factory.mktemp("ferplus")
    shutil.copy(empty_store, cwd / "mlflow.db")
    pixels, labels = ferplus_files(cwd)
    args = ["data=ferplus", f"data.path={pixels}", f"data.labels={labels}", "data.label_mode=crossentropy",
            *QUICK, "tracking.log_model=true", "explain.methods=[saliency]", "explain.filters.enabled=false",
            "explain.layer_outputs.enabled=false"]
    proc = call_fer("fer.train", *args, cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    client, run = only_run(cwd)
    return cwd, client, run, proc


def test_an_eight_class_run_has_ferplus_classes_in_every_metric_and_matrix(ferplus_run):
    _, client, run, _ = ferplus_run
    assert run.info.status == "FINISHED"
    metrics = run.data.metrics
    assert {f"test_acc_{c}" for c in FERPLUS_EMOTIONS} <= set(metrics)
    doc = json.loads(artifact_bytes(client, run.info.run_id, "confusion_matrix.json"))
    counts = np.array(doc["counts"])
    assert doc["classes"] == list(FERPLUS_EMOTIONS) and counts.shape == (8, 8)
    assert set(doc["splits"]) == {"public", "private"}
    kept = {u: n - NOT_A_FACE for u, n in SPLITS.items()}
    assert counts.sum() == kept["PublicTest"] + kept["PrivateTest"]
    assert abs(np.trace(counts) / counts.sum() - metrics["test_acc"]) < 1e-6
    md = artifact_bytes(client, run.info.run_id, "confused_pairs.md").decode()
    assert "| Contempt |" in md and "| Angry |" not in md
    assert int(run.data.params["data.rows_train"]) == kept["Training"]
    assert run.data.params["data.label_mode"] == "crossentropy" and run.data.params["data.classes"] == "ferplus"
    inputs = {i.dataset.name: {t.key: t.value for t in i.tags} for i in run.inputs.dataset_inputs}
    assert json.loads(inputs["ferplus-train"]["fer.classes"]) == list(FERPLUS_EMOTIONS)


def test_predictions_are_scored_against_the_votes_too(ferplus_run):
    """Accuracy against the majority label, and the share of predictions at least one annotator chose, which
    is never lower."""
    _, client, run, _ = ferplus_run
    metrics = run.data.metrics
    for split in ("", "public_", "private_"):
        acc, any_vote = metrics[f"test_{split}acc"], metrics[f"test_{split}any_vote_acc"]
        assert 0 <= acc <= any_vote <= 1
    assert len(client.get_metric_history(run.info.run_id, "val_any_vote_acc")) == 2  # each epoch


def test_faces_ferplus_leaves_out_are_listed_in_the_run(ferplus_run):
    _, client, run, proc = ferplus_run
    left_out = NOT_A_FACE * len(SPLITS)
    assert run.data.tags["fer.dropped_rows"] == str(left_out)
    rows = list(csv.reader(artifact_bytes(client, run.info.run_id, "dropped_rows.csv").decode().splitlines()))
    assert rows[0] == ["line", "reason"] and len(rows) == 1 + left_out
    assert rows[1] == ["2", "fer2013new.csv:2: not a face (NF 10)"]
    assert f"FER+ left out {left_out} of 480 faces" in proc.stderr


def test_the_model_leaves_the_run_with_eight_outputs_named_in_its_metadata(ferplus_run, tmp_path):
    cwd, client, run, _ = ferplus_run
    mlflow.set_tracking_uri(client.tracking_uri)
    info = mlflow.models.get_model_info(f"runs:/{run.info.run_id}/model")
    (out,) = info.signature.outputs.inputs
    assert out.shape == (-1, 8) and info.metadata["classes"] == list(FERPLUS_EMOTIONS)
    faces = generate(2, seed=9, classes=FERPLUS_EMOTIONS).images
    for i, face in enumerate(faces):
        save(tmp_path / "photos" / f"{i}.png", face)
    proc = call_fer("fer.predict", f"run_id={run.info.run_id}", f"images={tmp_path / 'photos'}", "detect=none",
                    f"output={tmp_path / 'out'}", cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    with open(tmp_path / "out" / "predictions.csv") as f:
        table = list(csv.DictReader(f))
    assert list(table[0])[-8:] == list(FERPLUS_EMOTIONS) and table[0]["label"] in FERPLUS_EMOTIONS


def test_evaluating_on_data_of_other_classes_is_one_line(ferplus_run):
    cwd, _, run, _ = ferplus_run
    proc = call_fer("fer.evaluate", f"run_id={run.info.run_id}", "data=fer2013", f"data.path={cwd / 'fer2013.csv'}",
                    cwd=cwd)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == (
        f"fer: error: run {run.info.run_id} classifies into 8 classes ({', '.join(FERPLUS_EMOTIONS)}); "
        "data=fer2013 has 7 (Angry, Disgust, Fear, Happy, Sad, Surprise, Neutral): give data with the model's classes")


def test_the_note_and_the_report_say_what_accuracy_is_measured_against(ferplus_run, tmp_path):
    cwd, client, run, _ = ferplus_run
    note = run.data.tags["mlflow.note.content"]
    assert (f"Test accuracy: **{run.data.metrics['test_acc']:.4f}** against FER+'s majority label; "
            f"{run.data.metrics['test_any_vote_acc']:.4f} of the predictions are a class at least one annotator "
            "voted for (training: data.label_mode=crossentropy)") in note
    proc = call_fer("fer.report", "fer", f"--output={tmp_path / 'report.html'}", cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    page = (tmp_path / "report.html").read_text()
    assert "test accuracy is against the majority of the ten annotators&#x27; votes" in page
    assert f"{100 * run.data.metrics['test_any_vote_acc']:.1f} % a class at least one annotator chose" in page


def test_fer2013_cleaned_by_ferplus_keeps_its_seven_labels_without_the_not_a_face_faces(ferplus_run, tmp_path,
                                                                                     empty_store):
    cwd = ferplus_run[0]
    shutil.copy(empty_store, tmp_path / "mlflow.db")
    proc = call_fer("fer.train", "data=fer2013", f"data.path={cwd / 'fer2013.csv'}", "data.clean=ferplus",
                    f"data.labels={cwd / 'fer2013new.csv'}", *QUICK, "trainer.max_epochs=1", "explain=none",
                    cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    client, run = only_run(tmp_path)
    assert int(run.data.params["data.rows_train"]) == SPLITS["Training"] - NOT_A_FACE
    assert run.data.tags["fer.dropped_rows"] == str(NOT_A_FACE * len(SPLITS))
    doc = json.loads(artifact_bytes(client, run.info.run_id, "confusion_matrix.json"))
    assert doc["classes"][0] == "Angry" and len(doc["classes"]) == 7
