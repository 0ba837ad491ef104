"""End to end through `python -m fer.train`: what a finished run leaves in MLflow."""

from __future__ import annotations

import io
import json
import tempfile

import numpy as np
import torch
from conftest import CNN_ARGS, QUICK, call_fer, only_run
from PIL import Image
from test_models import vgg_params

from fer.data.synthetic import generate
from fer.labels import EMOTIONS

EPOCH_METRICS = ("train_loss", "train_acc", "val_loss", "val_acc", "val_f1", "lr")
ARTIFACTS = ("config.yaml", "model_summary.txt", "confusion_matrix.png", "confusion_matrix.json",
             "confused_pairs.md", "curves.png")


def artifact_bytes(client, run_id: str, path: str) -> bytes:
    with tempfile.TemporaryDirectory() as tmp, open(client.download_artifacts(run_id, path, tmp), "rb") as f:
        return f.read()


def checkpoint_param_count(client, run) -> int:
    """Parameters of the network counted from the saved weights, not from fer's own model code."""
    with tempfile.TemporaryDirectory() as tmp:
        state = torch.load(client.download_artifacts(run.info.run_id, run.data.tags["fer.checkpoint"], tmp),
                           weights_only=True)["state_dict"]
    buffers = ("running_mean", "running_var", "num_batches_tracked")
    return sum(v.numel() for k, v in state.items() if k.startswith("net.") and not k.endswith(buffers))


def assert_complete_run(client, run, epochs: int):
    assert run.info.status == "FINISHED"
    rid = run.info.run_id
    for key in EPOCH_METRICS:
        steps = sorted(m.step for m in client.get_metric_history(rid, key))
        assert steps == list(range(epochs)), (key, steps)
    metrics = run.data.metrics
    assert 0.0 <= metrics["test_acc"] <= 1.0
    assert any(f"test_acc_{c}" in metrics for c in EMOTIONS)
    params = run.data.params
    for key in ("model.name", "act.name", "norm.name", "aug.name", "optim.lr", "data.batch_size"):
        assert key in params
    assert int(params["params_total"]) == checkpoint_param_count(client, run)
    assert int(params["params_total"]) == int(params["params_trainable"]) + int(params["params_non_trainable"])
    names = {a.path for a in client.list_artifacts(rid)}
    assert set(ARTIFACTS) <= names, names
    assert [a.path for a in client.list_artifacts(rid, "checkpoints")]
    for png in ("confusion_matrix.png", "curves.png"):
        with Image.open(io.BytesIO(artifact_bytes(client, rid, png))) as im:
            im.load()
            assert im.width > 300 and im.height > 200
    summary = artifact_bytes(client, rid, "model_summary.txt").decode()
    assert f"Total params: {int(params['params_total']):,}" in summary and "Output Shape" in summary


def test_default_cnn_run_is_complete(cnn_run):
    cwd, client, run, proc = cnn_run
    assert_complete_run(client, run, epochs=2)
    assert run.info.run_name == "cnn-relu-standardize-none"
    assert run.info.run_id in proc.stdout and "test_acc" in proc.stdout
    assert "mlflow ui --backend-store-uri sqlite:///" in proc.stdout and "--host 127.0.0.1" in proc.stdout
    assert (cwd / "mlflow.db").exists() and (cwd / "mlruns").is_dir()
    assert run.data.tags["fer.command"] == "python -m fer.train " + " ".join(CNN_ARGS)
    assert "mlflow.source.git.commit" in run.data.tags and "fer.version.torch" in run.data.tags


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


def test_vgg19_selu_runs_as_written(tmp_path):
    proc = call_fer("fer.train", "model=vgg19", "act=selu", "data.limit=64", "trainer.max_epochs=1",
                    "trainer.progress_bar=false", "trainer.num_sanity_val_steps=0", "explain=none", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    client, run = only_run(tmp_path)
    assert_complete_run(client, run, epochs=1)
    assert not client.list_artifacts(run.info.run_id, "saliency")
    assert run.info.run_name == "vgg19-selu-standardize-none"
    summary = artifact_bytes(client, run.info.run_id, "model_summary.txt").decode()
    assert "SELU" in summary and "AlphaDropout" in summary and "ReLU" not in summary


def test_dnn_matched_to_vgg16(tmp_path):
    proc = call_fer("fer.train", "model=dnn", "model.match=vgg16", *QUICK[:3], "trainer.max_epochs=1",
                    "trainer.progress_bar=false", "explain.filters.steps=20", "explain.filters.n=8", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    client, run = only_run(tmp_path)
    assert_complete_run(client, run, epochs=1)
    rid = run.info.run_id
    # a DNN: saliency as for a CNN but no Grad-CAM, filters of its first hidden layer, no layer outputs
    assert {a.path for a in client.list_artifacts(rid, "saliency")} == {
        f"saliency/{m}.png" for m in ("saliency", "integrated_gradients", "guided_backprop", "smoothgrad")}
    assert [a.path for a in client.list_artifacts(rid, "filters")] == ["filters/classifier.0.png"]
    assert not client.list_artifacts(rid, "layer_outputs")
    notes = run.data.tags["fer.explain.notes"]
    assert "gradcam skipped" in notes and "layer outputs skipped" in notes
    vgg16 = vgg_params(16, 512)
    assert abs(int(run.data.params["params_total"]) - vgg16) / vgg16 <= 0.02
    assert run.info.run_name == "dnn~vgg16-relu-standardize-none"
