"""A finished run brought back: its config and its best checkpoint, loaded without unpickling code."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass

import torch
from mlflow.exceptions import MlflowException
from omegaconf import DictConfig, OmegaConf

from fer import tracking
from fer.data import Splits, load_splits
from fer.data.datamodule import FERDataModule
from fer.errors import FerError
from fer.module import FERModule


@dataclass
class Restored:
    cfg: DictConfig
    splits: Splits
    datamodule: FERDataModule
    module: FERModule


def restore(client, run_id: str, data_cfg: DictConfig | None) -> Restored:
    """The run's model with its best weights, and its data (or `data_cfg` in its place)."""
    try:
        run = client.get_run(run_id)
    except MlflowException as e:
        raise FerError(f"no run {run_id!r} in {client.tracking_uri}: {e.message.splitlines()[0]}") from None
    checkpoint = run.data.tags.get("fer.checkpoint")
    if checkpoint is None:
        raise FerError(f"run {run_id} has no checkpoint (tag fer.checkpoint): did it finish training?")
    with tempfile.TemporaryDirectory() as tmp:
        cfg = OmegaConf.load(client.download_artifacts(run_id, "config.yaml", tmp))
        state = torch.load(client.download_artifacts(run_id, checkpoint, tmp), map_location="cpu", weights_only=True)
    if data_cfg is not None:
        cfg.data = data_cfg
    splits = load_splits(cfg.data)
    if not splits.tests:
        splits.tests = {"val": splits.val}
    module = FERModule(OmegaConf.to_container(cfg, resolve=True), list(splits.tests))
    module.load_state_dict(state["state_dict"])
    return Restored(cfg, splits, FERDataModule(splits, cfg.data, cfg.aug), module)


def client_and_data(cfg: DictConfig):
    return tracking.client_for(cfg.tracking.uri), cfg.get("data")
