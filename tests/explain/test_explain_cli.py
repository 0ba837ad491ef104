"""Explanations end to end: what a training run and `python -m fer.explain` leave in the MLflow run."""

from __future__ import annotations

import io
import re

import pytest
from helpers import artifact_bytes, call_fer, only_run, write_photos
from PIL import Image

from fer.explain.saliency import METHODS
from fer.labels import EMOTIONS

pytestmark = pytest.mark.xdist_group("cnn_run")  # on the worker that trains the shared run: none waits for it


def png(client, run_id: str, path: str) -> Image.Image:
    im = Image.open(io.BytesIO(artifact_bytes(client, run_id, path)))
    im.load()
    return im


def test_training_run_leaves_saliency_filters_and_layer_outputs(cnn_run):
    _, client, run, _ = cnn_run
    rid = run.info.run_id
    saliency = {a.path for a in client.list_artifacts(rid, "saliency")}
    assert saliency == {f"saliency/{m}.png" for m in METHODS}
    for path in saliency:
        im = png(client, rid, path)
        assert im.height > len(EMOTIONS) / 3 * im.width  # a row of three square panels per class probe
    # default layers: first and last conv, by module name
    for kind in ("filters", "layer_outputs"):
        assert [a.path for a in client.list_artifacts(rid, kind)] == [f"{kind}/features.0.png",
                                                                     f"{kind}/features.10.png"]
    filters = png(client, rid, "filters/features.0.png")
    assert filters.width > filters.height  # 32 tiles in 4 rows of 8
    assert png(client, rid, "layer_outputs/features.10.png").width > 300
    for method in ("saliency", "integrated_gradients", "gradcam"):
        assert run.data.metrics[f"saliency_mask_ratio_{method}"] > 0
    # explain.every_n_epochs=1: saliency figures as images per epoch, for MLflow's image slider
    images = [a.path for a in client.list_artifacts(rid, "images") if a.path.endswith(".png")]
    for method in METHODS:
        steps = sorted(int(m[1]) for p in images if (m := re.match(rf"images/saliency_{method}[+%]step[+%](\d+)", p)))
        assert steps == [0, 1], (method, images)


def test_explain_command_adds_to_the_finished_run(cnn_run):
    cwd, client, run, _ = cnn_run
    rid = run.info.run_id
    proc = call_fer("fer.explain", f"run_id={rid}", "explain.methods=[gradcam]", "explain.filters.layers=[conv:1]",
                    "explain.filters.steps=10", "explain.filters.n=4", "explain.layer_outputs.layers=[features.3]",
                    cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    client, same = only_run(cwd)  # no new run
    assert same.info.run_id == rid and same.info.status == "FINISHED"
    for path in ("filters/features.3.png", "layer_outputs/features.3.png", "saliency/gradcam.png"):
        assert path in proc.stdout
        png(client, rid, path)
    assert rid in proc.stdout


def test_explain_a_users_own_photos(cnn_run, tmp_path):
    """`images=`: saliency and Grad-CAM of each face found, for the class predicted (a photo has no label), under
    photos/ so the validation figures stay as they were."""
    cwd, client, run, _ = cnn_run
    rid = run.info.run_id
    before = artifact_bytes(client, rid, "saliency/gradcam.png")
    expected = write_photos(tmp_path / "photos")
    proc = call_fer("fer.explain", f"run_id={rid}", f"images={tmp_path / 'photos'}",
                    "explain.methods=[saliency,gradcam]", cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    assert {a.path for a in client.list_artifacts(rid, "photos/saliency")} == {
        "photos/saliency/saliency.png", "photos/saliency/gradcam.png"}
    figure = png(client, rid, "photos/saliency/gradcam.png")
    assert figure.height > sum(expected.values()) / 3 * figure.width  # a row per face: three faces
    assert "fer: coffee.webp: no face found" in proc.stdout and "notes.jpg" in proc.stdout
    assert artifact_bytes(client, rid, "saliency/gradcam.png") == before


def test_explain_command_rejects_an_unknown_layer(cnn_run):
    cwd, _, run, _ = cnn_run
    proc = call_fer("fer.explain", f"run_id={run.info.run_id}", "explain.layer_outputs.layers=[features.99]",
                    cwd=cwd)
    assert proc.returncode == 2
    assert "explain.layer_outputs.layers" in proc.stderr and "features.99" in proc.stderr
    assert "Traceback" not in proc.stderr
