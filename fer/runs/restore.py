"""Bringing back a finished run, the end of a run's life that the other commands start from: its config and best
checkpoint, loaded without unpickling code, with its data or without (a user's photos need none), on the device
`accelerator=` allows."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass

import torch
from mlflow.exceptions import MlflowException
from omegaconf import DictConfig, OmegaConf

from fer.data.datamodule import FERDataModule
from fer.data.load import load_splits
from fer.data.splits import Splits
from fer.errors import FerError
from fer.labels import CLASS_SETS
from fer.runs.validate import resolve_match
from fer.tracking import tags
from fer.tracking.logged_model import run_of
from fer.tracking.store import client_for
from fer.training.checkpoint import load_checkpoint
from fer.training.module import FERModule, class_set
from fer.training.trainer import check_accelerator


def download(client, run, path: str, into: str) -> str:
    """A local copy of the run's artifact `path`; a FerError naming where it should be when it cannot be had."""
    try:
        return client.download_artifacts(run.info.run_id, path, into)
    except (MlflowException, OSError) as e:
        why = (e.message if isinstance(e, MlflowException) else str(e)).splitlines()[0][:200]
        raise FerError(f"run {run.info.run_id}: its artifact {path} cannot be read from {run.info.artifact_uri} "
                       f"({why}); it was deleted or the store moved: point tracking.uri at the store that holds "
                       "it, or train the run again") from None


def run_to_restore(cfg: DictConfig) -> str:
    """The run `run_id=` names, or the run that trained `model=models:/…` (`model_uri`)."""
    run_id, model_uri = cfg.get("run_id"), cfg.get("model_uri")
    check_accelerator(cfg.accelerator, "accelerator")
    if bool(run_id) == bool(model_uri):
        raise FerError("give the model to use as run_id=<run id> or model=models:/<name>@<alias> (or "
                       f"models:/<name>/<version>), one of them; found run_id={run_id} model={model_uri}")
    return run_id or run_of(client_for(cfg.tracking.uri), model_uri)


@dataclass
class Restored:
    cfg: DictConfig
    splits: Splits
    datamodule: FERDataModule
    module: FERModule


def saved_run(client, run_id: str) -> tuple[DictConfig, dict]:
    """The run `run_id`'s config and its best checkpoint's state dict (read without unpickling)."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # a bar per small file only hides the rest
    try:
        run = client.get_run(run_id)
    except MlflowException as e:
        raise FerError(f"no run {run_id!r} in {client.tracking_uri}: {e.message.splitlines()[0]}") from None
    checkpoint = run.data.tags.get(tags.CHECKPOINT)
    if checkpoint is None:
        raise FerError(f"run {run_id} has no checkpoint (tag {tags.CHECKPOINT}): did it finish training?")
    with tempfile.TemporaryDirectory() as tmp:
        run_cfg = OmegaConf.load(download(client, run, "config.yaml", tmp))
        state = load_checkpoint(download(client, run, checkpoint, tmp), f"run {run_id}: the artifact {checkpoint}")
    return run_cfg, state["state_dict"]


def restored_module(run_cfg: DictConfig, state_dict: dict, test_names: list[str]) -> FERModule:
    module = FERModule(OmegaConf.to_container(resolve_match(run_cfg), resolve=True), test_names)
    module.load_state_dict(state_dict)
    return module


def device_for(accelerator: str) -> str:
    """Where a restored model runs: a GPU when `accelerator` allows one and there is one."""
    return "cuda" if accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available() else "cpu"


def restore_model(cfg: DictConfig, run_id: str) -> tuple[object, FERModule]:
    """The client of `cfg.tracking.uri` and the run's model with its best weights on `cfg.accelerator`'s device,
    without its data (a user's photos need none)."""
    client = client_for(cfg.tracking.uri)
    return client, restored_module(*saved_run(client, run_id), ["test"]).to(device_for(cfg.accelerator))


def restore(uri: str, run_id: str, data_cfg: DictConfig | None = None) -> tuple[object, Restored]:
    """The client of the store at `uri` and the run `run_id`'s model with its best weights, with its data (or
    `data_cfg` in its place)."""
    client = client_for(uri)
    run_cfg, state_dict = saved_run(client, run_id)
    if data_cfg is not None:
        trained, given = class_set(run_cfg), CLASS_SETS.get(data_cfg.classes)
        if trained != given:
            raise FerError(f"run {run_id} classifies into {len(trained)} classes ({', '.join(trained)}); "
                           f"data={data_cfg.name} has {len(given)} ({', '.join(given)}): give data with the "
                           "model's classes")
        run_cfg.data = data_cfg
    splits = load_splits(run_cfg.data)
    if not splits.tests:
        splits.tests = {"val": splits.val}
    module = restored_module(run_cfg, state_dict, list(splits.tests))
    return client, Restored(run_cfg, splits, FERDataModule(splits, run_cfg.data, run_cfg.aug), module)
