"""`fer.evaluate` re-tests a finished run into the same run; `fer.predict` writes a Kaggle-style csv."""

from __future__ import annotations

import csv

from helpers import only_run, run_fer

from fer.data.synthetic import generate


def test_evaluate_logs_into_the_same_run(cnn_run):
    cwd, client, run, _ = cnn_run
    rid = run.info.run_id
    proc = run_fer("fer.evaluate", f"run_id={rid}", cwd=cwd)
    _, again = only_run(cwd)  # no new run
    assert again.info.run_id == rid and again.info.status == "FINISHED"
    history = [m.value for m in client.get_metric_history(rid, "test_acc")]
    assert len(history) == 2 and abs(history[0] - history[1]) < 1e-6  # same checkpoint, same data
    assert "fer.evaluated_data" in again.data.tags and f"{history[1]:.4f}" in proc.stdout


def test_evaluate_unknown_run_is_one_line(cnn_run):
    cwd = cnn_run[0]
    proc = run_fer("fer.evaluate", "run_id=0123456789abcdef", cwd=cwd, check=False)
    assert proc.returncode == 2 and "fer: error: no run '0123456789abcdef'" in proc.stderr
    assert "Traceback" not in proc.stderr


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


def test_predict_writes_id_label_for_hw3_test_csv(cnn_run, tmp_path):
    cwd, _, run, _ = cnn_run
    write_hw3(tmp_path / "hw3", n_train=40, n_test=25)
    out = tmp_path / "pred.csv"
    proc = run_fer("fer.predict", f"run_id={run.info.run_id}", "data=hw3", f"data.path={tmp_path / 'hw3'}",
                   f"output={out}", cwd=cwd)
    rows = list(csv.reader(out.open()))
    assert rows[0] == ["id", "label"]
    assert [int(r[0]) for r in rows[1:]] == list(range(100, 125))
    assert all(0 <= int(r[1]) <= 6 for r in rows[1:])
    assert str(out) in proc.stdout
