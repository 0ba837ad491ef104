"""The run's model outside fer: an MLflow 3 LoggedModel (pt2) that pyfunc and `mlflow models serve` answer with
fer's own probabilities, versions in the model registry, and `models:/…` back in fer.predict and fer.evaluate."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

import forked
import mlflow
import numpy as np
import pytest
from helpers import ASTRONAUT_FACE, astronaut, call_fer, faces, free_port, write_photos
from mlflow.entities import LoggedModelStatus
from PIL import Image

from fer.data.photos import find_faces, read_photo
from fer.labels import EMOTIONS
from fer.runs.restore import restored_module, saved_run
from fer.tracking import tags
from fer.tracking.store import client_for
from fer.training.export import OUT_OF_RANGE, SCALED_TO_ONE

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("registered")]  # one worker trains the two runs


def fer_probabilities(client, run_id: str, pixels: np.ndarray) -> np.ndarray:
    """What fer's own restore of the run gives for uint8 faces (N, 48, 48)."""
    return restored_module(*saved_run(client_for(client.tracking_uri), run_id), ["test"]).classify(pixels)


def test_each_run_logs_its_tested_model_with_metrics_params_and_a_signature(registered):
    _, client, exp, runs, _ = registered
    mlflow.set_tracking_uri(client.tracking_uri)
    models = client.search_logged_models([exp.experiment_id])
    assert sorted(m.source_run_id for m in models) == sorted(r.info.run_id for r in runs)
    for run in runs:
        (model,) = [m for m in models if m.source_run_id == run.info.run_id]
        assert model.name == "model" and model.status == LoggedModelStatus.READY
        assert [o.model_id for o in run.outputs.model_outputs] == [model.model_id]
        metrics = {m.key: m.value for m in model.metrics}
        assert metrics["test_acc"] == run.data.metrics["test_acc"]
        assert {k for k in metrics} == {k for k in run.data.metrics if k.startswith("test_")}
        assert model.params["model.name"] == "cnn" and model.params["params_total"] == run.data.params["params_total"]
        info = mlflow.models.get_model_info(f"models:/{model.model_id}")
        (spec,) = info.signature.inputs.inputs
        assert spec.type == np.float32 and spec.shape == (-1, 1, 48, 48)
    assert any(k.startswith("system/cpu") for k in runs[0].data.metrics)
    assert not any(k.startswith("system/") for k in runs[1].data.metrics)  # tracking.system_metrics=false


def test_pyfunc_answers_with_fers_own_probabilities(registered):
    _, client, _, runs, _ = registered
    run_id = runs[0].info.run_id
    pixels = np.concatenate([faces(6, seed=3), np.zeros((1, 48, 48), np.uint8), np.full((1, 48, 48), 255, np.uint8)])
    mlflow.set_tracking_uri(client.tracking_uri)
    model = mlflow.pyfunc.load_model(f"runs:/{run_id}/model")
    served = model.predict(pixels[:, None].astype(np.float32))
    assert served.shape == (8, len(EMOTIONS))
    np.testing.assert_allclose(served, fer_probabilities(client, run_id, pixels), atol=1e-5, rtol=0)
    np.testing.assert_allclose(served.sum(1), 1, atol=1e-5)
    with pytest.raises(RuntimeError, match="look scaled to 0-1"):  # the graph's own check, as served
        model.predict(pixels[:, None].astype(np.float32) / 255)


def post(port: int, body: str) -> bytes:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", data=body.encode(),
                                     headers={"Content-Type": "application/json"})
    return urllib.request.urlopen(request, timeout=60).read()


def refusal(port: int, body: str) -> str:
    """Why the served model refused a request (HTTP 400): MLflow's message for a request its signature refuses,
    the last line of the stack trace MLflow sends for one the model's own checks refuse."""
    with pytest.raises(urllib.error.HTTPError) as refused:
        post(port, body)
    answer = json.loads(refused.value.read())
    assert refused.value.code == 400, answer
    if answer["error_code"] == "INVALID_PARAMETER_VALUE":
        return answer["message"]
    assert answer["error_code"] == "BAD_REQUEST", answer
    return answer["stack_trace"].strip().splitlines()[-1]


def test_mlflow_models_serve_answers_the_same_on_loopback(registered):
    cwd, client, _, runs, _ = registered
    run_id = runs[0].info.run_id
    port = free_port()
    env = {**os.environ, "MLFLOW_TRACKING_URI": client.tracking_uri}
    server = subprocess.Popen([sys.executable, "-m", "mlflow", "models", "serve", "-m", f"runs:/{run_id}/model",
                               "--env-manager", "local", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
                              cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=1).status == 200:
                    break
            except OSError:
                assert server.poll() is None, server.stderr.read().decode()[-2000:]
                assert time.monotonic() < deadline, "mlflow models serve did not answer in 120 s"
                time.sleep(0.5)
        pixels = faces(4, seed=5)
        answer = json.loads(post(port, json.dumps({"inputs": pixels[:, None].tolist()})))["predictions"]
        np.testing.assert_allclose(np.asarray(answer), fer_probabilities(client, run_id, pixels), atol=1e-5, rtol=0)
        as_ints = json.loads(post(port, json.dumps({"inputs": pixels[:, None].astype(int).tolist()})))
        np.testing.assert_allclose(as_ints["predictions"], answer, atol=1e-6, rtol=0)  # JSON integers are fine
        why = refusal(port, json.dumps({"inputs": pixels[:, None, :, :47].tolist()}))  # 48×47: as README says
        assert "(-1, 1, 48, 48)" in why and "(4, 1, 48, 47)" in why, why
        assert SCALED_TO_ONE in refusal(port, json.dumps({"inputs": (pixels[:, None] / 255.0).tolist()}))
        for bad in (np.nan, 256.0, -1.0, 65535.0):  # not a gray level: a hole, out of range, a 16-bit scale
            faces_with_bad = pixels[:, None].astype(float)
            faces_with_bad[2, 0, 20, 20] = bad
            assert OUT_OF_RANGE in refusal(port, json.dumps({"inputs": faces_with_bad.tolist()})), bad
    finally:
        os.killpg(server.pid, 15)
        server.wait(30)


def test_registration_makes_versions_with_the_runs_numbers_and_moves_nothing_unasked(registered):
    _, client, _, runs, procs = registered
    first, second = (client.get_model_version("fer-cnn", v) for v in ("1", "2"))
    assert (first.run_id, second.run_id) == (runs[0].info.run_id, runs[1].info.run_id)
    assert str(client.get_model_version_by_alias("fer-cnn", "champion").version) == "1"
    training = next(i.dataset for i in client.get_run(runs[0].info.run_id).inputs.dataset_inputs
                    if any(t.key == tags.DATASET_CONTEXT and t.value == "training" for t in i.tags))
    assert first.tags == {"fer.run_id": runs[0].info.run_id, "fer.data_digest": training.digest,
                          "fer.test_acc": f"{runs[0].data.metrics['test_acc']:.4f}"}
    assert "fer: registered models:/fer-cnn@champion (version 1 of fer-cnn)" in procs[0].stdout
    assert "fer: registered models:/fer-cnn/2 (version 2 of fer-cnn)" in procs[1].stdout


def test_predict_a_registered_model_on_photos(registered, tmp_path):
    """`model=models:/fer-cnn@champion images=<folder>`: a csv row per face, an annotated copy per photo with
    faces, each bad file said once; the csv's probabilities are the MLflow Model's for the same crops."""
    cwd, client, _, runs, _ = registered
    expected = write_photos(tmp_path / "photos")
    proc = call_fer("fer.predict", "model=models:/fer-cnn@champion", f"images={tmp_path / 'photos'}",
                    f"output={tmp_path / 'out'}", "log_to_run=true", cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    with open(tmp_path / "out" / "predictions.csv") as f:
        table = list(csv.DictReader(f))
    assert [(r["file"], r["face"]) for r in table] == [("astronaut.jpg", "0"), ("two_astronauts.png", "0"),
                                                       ("two_astronauts.png", "1")]
    assert sorted(p.name for p in (tmp_path / "out" / "annotated").iterdir()) == ["astronaut.jpg",
                                                                                  "two_astronauts.png"]
    left, top, right, bottom = ASTRONAUT_FACE
    x, y, w, h = (int(table[0][k]) for k in ("x", "y", "width", "height"))
    assert left < x + w / 2 < right and top < y + h / 2 < bottom
    assert "fer: coffee.webp: no face found" in proc.stderr and proc.stderr.count("notes.jpg") == 1
    assert "fer: 3 faces in 4 photos" in proc.stdout and sum(expected.values()) == 3
    crops = np.stack([f.pixels for f in find_faces(read_photo(tmp_path / "photos" / "astronaut.jpg"), "cascade",
                                                   0.2)])
    mlflow.set_tracking_uri(client.tracking_uri)
    pyfunc = mlflow.pyfunc.load_model("models:/fer-cnn@champion").predict(crops[:, None].astype(np.float32))
    np.testing.assert_allclose([float(table[0][e]) for e in EMOTIONS], pyfunc[0], atol=1e-5)
    assert table[0]["label"] == EMOTIONS[int(pyfunc[0].argmax())]
    logged = {a.path for a in client.list_artifacts(runs[0].info.run_id, "predictions")}
    assert logged == {"predictions/annotated", "predictions/predictions.csv"}


def test_evaluate_a_registered_version_logs_a_model_with_the_new_numbers(registered):
    cwd, client, exp, runs, _ = registered
    run_id = runs[1].info.run_id
    proc = call_fer("fer.evaluate", "model=models:/fer-cnn/2", cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    steps = sorted(m.step for m in client.get_metric_history(run_id, "test_acc"))
    assert steps == [2, 3]  # training's test after epoch 2, then the re-test
    models = sorted(client.search_logged_models([exp.experiment_id], filter_string=f"source_run_id='{run_id}'"),
                    key=lambda m: m.creation_timestamp)
    assert len(models) == 2 and {m.step for m in models[1].metrics} == {3}


def test_ctrl_c_while_predicting_a_folder_keeps_what_was_classified(registered, tmp_path):
    """SIGINT to a real `fer.predict images=<folder>`: exit 130 and one line; the csv holds a row for every face
    whose annotated copy was written, none half done."""
    cwd, *_ = registered
    (tmp_path / "photos").mkdir()
    Image.fromarray(astronaut()).save(tmp_path / "photos" / "0000.jpg", quality=92)
    for k in range(1, 400):  # the same photo under 400 names: far more than it classifies before the signal
        (tmp_path / "photos" / f"{k:04d}.jpg").symlink_to(tmp_path / "photos" / "0000.jpg")
    proc = forked.Command("fer.predict", "model=models:/fer-cnn@champion", f"images={tmp_path / 'photos'}",
                          f"output={tmp_path / 'out'}", cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"})
    deadline = time.monotonic() + 120
    while len(list((tmp_path / "out" / "annotated").glob("*.jpg"))) < 3:
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "Traceback" not in err, err
    with open(tmp_path / "out" / "predictions.csv") as f:
        table = list(csv.DictReader(f))
    annotated = sorted(p.name for p in (tmp_path / "out" / "annotated").iterdir())
    assert 3 <= len(table) < 400 and [r["file"] for r in table] == annotated
    assert err.strip().splitlines()[-1] == (f"fer: stopped by Ctrl-C: the {len(table)} faces classified up to "
                                            f"{annotated[-1]} are in {tmp_path / 'out' / 'predictions.csv'}")


def test_a_model_uri_that_names_nothing_is_one_line(registered):
    cwd, *_ = registered
    proc = call_fer("fer.predict", "model=models:/fer-cnn@nobody", "images=.", cwd=cwd)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("fer: error: model=models:/fer-cnn@nobody: not found in ")
    assert proc.stderr.strip().endswith("registered models there: fer-cnn")
    neither = call_fer("fer.predict", "images=.", cwd=cwd)
    assert neither.returncode == 2 and "give the model to use as run_id=<run id> or model=" in neither.stderr
