"""`fer.evaluate` re-tests a finished run into the same run; `fer.predict` writes a Kaggle-style csv; both say in
one line what is wrong when the run's checkpoint is gone or is not one fer wrote."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest
from helpers import QUICK, call_fer, only_run, tamper
from PIL import Image

from fer.data.synthetic import generate

pytestmark = pytest.mark.xdist_group("finished")  # one worker trains the module's run


@pytest.fixture(scope="module")
def finished(tmp_path_factory, empty_store):
    """A short finished run (cwd, client, run) the tests here re-test and predict with."""
    cwd = tmp_path_factory.mktemp("finished")
    shutil.copy(empty_store, cwd / "mlflow.db")
    assert call_fer("fer.train", *QUICK, "trainer.max_epochs=1", "explain=none", cwd=cwd).returncode == 0
    return (cwd, *only_run(cwd))


def test_evaluate_logs_into_the_same_run(finished):
    cwd, client, run = finished
    rid = run.info.run_id
    proc = call_fer("fer.evaluate", f"run_id={rid}", cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    _, again = only_run(cwd)  # no new run
    assert again.info.run_id == rid and again.info.status == "FINISHED"
    history = [m.value for m in client.get_metric_history(rid, "test_acc")]
    assert len(history) == 2 and abs(history[0] - history[1]) < 1e-6  # same checkpoint, same data
    assert "fer.evaluated_data" in again.data.tags and f"{history[1]:.4f}" in proc.stdout


def test_evaluate_unknown_run_is_one_line(finished):
    cwd = finished[0]
    proc = call_fer("fer.evaluate", "run_id=0123456789abcdef", cwd=cwd)
    assert proc.returncode == 2 and "fer: error: no run '0123456789abcdef'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_an_accelerator_the_machine_lacks_is_one_line_and_the_run_is_untouched(finished):
    cwd, client, run = finished
    tests_before = len(client.get_metric_history(run.info.run_id, "test_acc"))
    proc = call_fer("fer.evaluate", f"run_id={run.info.run_id}", "accelerator=tpu", cwd=cwd)  # no TPU in CI
    assert proc.returncode == 2 and proc.stderr.strip().splitlines()[-1].startswith(
        "fer: error: config key 'accelerator': expected an accelerator this machine has: auto or cpu"), proc.stderr
    assert len(client.get_metric_history(run.info.run_id, "test_acc")) == tests_before


def write_hw3(folder, n_train: int, n_test: int):
    folder.mkdir()
    train, test = generate(n_train, seed=5), generate(n_test, seed=6)
    with open(folder / "train.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["label", "feature"])
        w.writerows([int(y), " ".join(map(str, x.ravel()))] for x, y in zip(train.images, train.labels, strict=True))
    with open(folder / "test.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "feature"])
        w.writerows([100 + i, " ".join(map(str, x.ravel()))] for i, x in enumerate(test.images))


def test_predict_writes_id_label_for_hw3_test_csv(finished, tmp_path):
    cwd, _, run = finished
    write_hw3(tmp_path / "hw3", n_train=40, n_test=25)
    out = tmp_path / "pred.csv"
    proc = call_fer("fer.predict", f"run_id={run.info.run_id}", "data=hw3", f"data.path={tmp_path / 'hw3'}",
                    f"output={out}", cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.reader(out.open()))
    assert rows[0] == ["id", "label"]
    assert [int(r[0]) for r in rows[1:]] == list(range(100, 125))
    assert all(0 <= int(r[1]) <= 6 for r in rows[1:])
    assert str(out) in proc.stdout


def checkpoint_file(run) -> Path:
    return Path(run.info.artifact_uri.removeprefix("file://")) / run.data.tags["fer.checkpoint"]


@pytest.mark.parametrize("command", ["fer.evaluate", "fer.predict"])
def test_a_missing_checkpoint_artifact_is_one_line_naming_it(finished, tmp_path, command):
    cwd, _, run = finished
    ckpt = checkpoint_file(run)
    shutil.move(ckpt, tmp_path / "kept.ckpt")
    try:
        proc = call_fer(command, f"run_id={run.info.run_id}", cwd=cwd)
    finally:
        shutil.move(tmp_path / "kept.ckpt", ckpt)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith(f"fer: error: run {run.info.run_id}: its artifact {run.data.tags['fer.checkpoint']} "
                           f"cannot be read from {run.info.artifact_uri}")
    assert "point tracking.uri at the store that holds it" in line


@pytest.mark.parametrize("command", ["fer.evaluate", "fer.predict"])
def test_a_foreign_checkpoint_is_refused_without_running_it(finished, tmp_path, command):
    cwd, _, run = finished
    ckpt = checkpoint_file(run)
    shutil.copy2(ckpt, tmp_path / "kept.ckpt")
    tamper(ckpt, tmp_path / "payload-ran")
    try:
        proc = call_fer(command, f"run_id={run.info.run_id}", cwd=cwd)
    finally:
        shutil.copy2(tmp_path / "kept.ckpt", ckpt)
    assert not (tmp_path / "payload-ran").exists()
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and "weights_only=False" not in proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert line == (f"fer: error: run {run.info.run_id}: the artifact {run.data.tags['fer.checkpoint']} holds "
                    "objects other than tensors, so it is not a checkpoint fer wrote; nothing in it was run: "
                    "replace it with a trusted copy, or train the run again")


@pytest.mark.parametrize("args, output, expected", [
    ([], "a-file/pred.csv", "a path through folders ({tmp}/a-file is a file)"),
    ([], "a-folder", "a file to write, not a folder that exists"),
    (["images=photos"], "a-file/out", "a path through folders ({tmp}/a-file is a file)"),
], ids=["csv-through-a-file", "csv-onto-a-folder", "photos-through-a-file"])
def test_an_output_that_cannot_be_written_is_one_line_before_any_work(finished, tmp_path, args, output, expected):
    cwd, _, run = finished
    (tmp_path / "a-file").write_text("not a folder")
    (tmp_path / "a-folder").mkdir()
    (tmp_path / "photos").mkdir()
    Image.new("L", (96, 96), 128).save(tmp_path / "photos" / "grey.png")
    args = [a.replace("photos", str(tmp_path / "photos")) for a in args]
    proc = call_fer("fer.predict", f"run_id={run.info.run_id}", *args, f"output={tmp_path / output}", cwd=cwd)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == [f"fer: error: config key 'output': expected "
                                                f"{expected.format(tmp=tmp_path)}, got '{tmp_path / output}'"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file", "a-folder", "photos"]  # nothing written
