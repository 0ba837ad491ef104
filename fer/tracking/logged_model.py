"""The tested model as an MLflow Model (an MLflow 3 LoggedModel of the run, saved as pt2), its versions in the
model registry, and `models:/…` URIs traced back to the run that trained them.

Logging goes through `mlflow.pytorch.log_model`, so the model is what every MLflow tool expects: the UI's
"Logged models", `search_logged_models`, `mlflow.pyfunc.load_model`, `mlflow models serve`. fer itself
restores a run from its checkpoint; a `models:/` URI is resolved to that run, so predictions stay fer's own
(its data, TTA, device).
"""

from __future__ import annotations

import contextlib

import mlflow
import numpy as np
import torch
from mlflow.entities import LoggedModelOutput, Metric
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature
from mlflow.tracking import MlflowClient
from mlflow.types import Schema, TensorSpec

from fer.console import say
from fer.errors import FerError
from fer.tracking import tags
from fer.tracking.retry import when_free
from fer.training.export import INPUT_SHAPE, example_images, exportable

ARTIFACT = "model"  # the LoggedModel's name: `runs:/<run id>/model`


def signature(classes: int) -> ModelSignature:
    """float32 faces (N, 1, 48, 48), 0–255 in; (N, classes) probabilities out (their names are the model's
    metadata `classes`). MLflow enforces one dtype per input, and float32 is what JSON numbers, pandas frames and a
    `uint8.astype("float32")` all give."""
    return ModelSignature(inputs=Schema([TensorSpec(np.dtype(np.float32), (-1, *INPUT_SHAPE))]),
                          outputs=Schema([TensorSpec(np.dtype(np.float32), (-1, classes))]))


def requirements() -> list[str]:
    """What loading the pt2 graph needs: given, so MLflow does not spend seconds inferring them."""
    return [f"torch=={torch.__version__.split('+')[0]}", f"mlflow=={mlflow.__version__}", "numpy"]


@contextlib.contextmanager
def fluent_store(uri: str):
    """MLflow's model logging and registration read the global tracking URI; fer's client names the store.
    Restored afterwards."""
    before = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(before)


def test_step(client, run_id: str) -> int:
    """The step of the run's latest test: the LoggedModel's step."""
    history = client.get_metric_history(run_id, "test_acc")
    return max(history, key=lambda m: (m.timestamp, m.step)).step if history else 0


def training_digest(run) -> str:
    for dataset_input in run.inputs.dataset_inputs:
        if any(t.key == tags.DATASET_CONTEXT and t.value == "training" for t in dataset_input.tags):
            return dataset_input.dataset.digest
    return ""


def log_model(client, run_id: str, module) -> str | None:
    """Log `module`'s tested weights as the run's MLflow Model, carrying the run's params and its latest test's
    metrics; its model id, or None (said in one line) when it could not be logged — the run and its checkpoint
    are kept either way.

    The LoggedModel is made first and linked here, not by `log_model(run_id=…)`: that links every metric at
    the model's step, and the system metrics count their own steps."""
    if not client.flush():
        say("warning: the store did not take all of the run's writes: the model is not logged as an "
            "MLflow Model (the checkpoint is kept; log it later with fer.evaluate)", err=True)
        return None
    store = MlflowClient(client.tracking_uri)  # the spool's calls carry no model_id; the spool is empty now
    try:
        run, step = store.get_run(run_id), test_step(store, run_id)
        with fluent_store(client.tracking_uri):  # each step retried while parallel jobs lock a sqlite store
            model = when_free(mlflow.initialize_logged_model, name=ARTIFACT, source_run_id=run_id,
                              params=run.data.params, model_type="fer-classifier",
                              experiment_id=run.info.experiment_id)
            when_free(mlflow.pytorch.log_model, exportable(module), name=ARTIFACT, model_id=model.model_id,
                      serialization_format="pt2", signature=signature(len(module.classes)),
                      metadata={"classes": list(module.classes)}, input_example=example_images().numpy(),
                      pip_requirements=requirements(), validate_serving_input=False)
        when_free(store.log_outputs, run_id, [LoggedModelOutput(model.model_id, step)])
        tested = [Metric(m.key, m.value, m.timestamp, m.step, run_id=run_id, model_id=model.model_id)
                  for key in run.data.metrics if key.startswith("test_")
                  for m in store.get_metric_history(run_id, key) if m.step == step]
        when_free(store.log_batch, run_id, metrics=tested)
    except (MlflowException, OSError, RuntimeError) as e:
        first = (e.message if isinstance(e, MlflowException) else str(e)).strip().splitlines()[0][:300]
        say(f"warning: the model was not logged as an MLflow Model ({type(e).__name__}: {first}); the "
            "checkpoint is kept in the run", err=True)
        return None
    return model.model_id


def register(client, run_id: str, model_id: str, name: str, alias: str | None) -> int | None:
    """A new version of registered model `name` from the LoggedModel `model_id` (tagged with the run's test
    accuracy and training-data digest), and `alias` pointed at it; the version number, or None (said in one
    line, with the command that registers it later) when the registry refuses."""
    run = client.get_run(run_id)
    version_tags = {"fer.run_id": run_id, "fer.data_digest": training_digest(run)}
    if "test_acc" in run.data.metrics:
        version_tags["fer.test_acc"] = f"{run.data.metrics['test_acc']:.4f}"
    try:
        with fluent_store(client.tracking_uri):
            version = when_free(mlflow.register_model, f"models:/{model_id}", name, tags=version_tags)
        if alias:
            when_free(client.set_registered_model_alias, name, alias, version.version)
    except MlflowException as e:
        again = f"python -m fer.evaluate run_id={run_id} tracking.register={name}" + (
            f" tracking.alias={alias}" if alias else "")
        say(f"warning: tracking.register={name}: the registry refused the model "
            f"({e.message.splitlines()[0][:200]}); the run is kept; register it later with: {again}", err=True)
        return None
    where = f"models:/{name}@{alias}" if alias else f"models:/{name}/{version.version}"
    say(f"registered {where} (version {version.version} of {name})")
    return int(version.version)


def log_and_register(client, run_id: str, module, tracking, may_register: bool = True) -> str | None:
    """With `tracking.log_model`, the model logged; with `tracking.register` (where `may_register`), registered
    as its next version and `tracking.alias` pointed at it. The model id, or None."""
    model_id = log_model(client, run_id, module) if tracking.log_model else None
    if model_id and tracking.register and may_register:
        register(client, run_id, model_id, tracking.register, tracking.alias)
    return model_id


def run_of(client, uri: str) -> str:
    """The run that trained the model `uri`: `models:/<name>@<alias>`, `models:/<name>/<version>` or
    `models:/<model id>`."""
    if not uri.startswith("models:/"):
        raise FerError(f"model={uri}: expected models:/<name>@<alias>, models:/<name>/<version> or "
                       "models:/<model id> (or give run_id=<id> instead)")
    path = uri.removeprefix("models:/").strip("/")
    try:
        if "@" in path:
            name, alias = path.split("@", 1)
            return client.get_model_version_by_alias(name, alias).run_id
        if "/" in path:
            name, version = path.split("/", 1)
            return client.get_model_version(name, version).run_id
        return client.get_logged_model(path).source_run_id
    except MlflowException as e:
        known = ", ".join(sorted(m.name for m in client.search_registered_models())) or "none"
        raise FerError(f"model={uri}: not found in {client.tracking_uri} ({e.message.splitlines()[0][:200]}); "
                       f"registered models there: {known}") from None
