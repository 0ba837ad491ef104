"""What the `python -m fer.<verb>` entry points share: one decorator stack, the Hydra job they run in, and
bringing back a finished run (its config and best checkpoint, loaded without unpickling code)."""

from __future__ import annotations

import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from mlflow.exceptions import MlflowException
from omegaconf import DictConfig, OmegaConf

from fer.config.hydra_errors import reports_config_errors
from fer.config.options import CONFIG_PATH
from fer.config.schema import register_schemas
from fer.data.datamodule import FERDataModule
from fer.data.load import load_splits
from fer.data.splits import Splits
from fer.errors import FerError, guarded
from fer.tracking import tags
from fer.tracking.store import client_for
from fer.training.checkpoint import load_checkpoint
from fer.training.module import FERModule


def entry_point(config_name: str, schemas: dict[str, type] | None = None):
    """`@entry_point("config")` over `main(cfg)`: registers fer's config schemas (and `schemas`, name → root
    schema) now, so Hydra finds them also in a launcher's worker; composes `conf/<config_name>.yaml` with the
    command line; and ends any FerError, Hydra's own composition errors included, as one `fer: error:` line
    and exit 2."""
    register_schemas(schemas)

    def decorate(main):
        composed = hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name=config_name)(guarded(main))
        return reports_config_errors(composed)

    return decorate


def job_overrides() -> list[str]:
    """This job's own overrides (inside a multirun sweep too)."""
    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else sys.argv[1:]


def output_dir() -> Path:
    return Path(HydraConfig.get().runtime.output_dir) if HydraConfig.initialized() else Path("outputs")


def download(client, run, path: str, into: str) -> str:
    """A local copy of the run's artifact `path`; a FerError naming where it should be when it cannot be had."""
    try:
        return client.download_artifacts(run.info.run_id, path, into)
    except (MlflowException, OSError) as e:
        why = (e.message if isinstance(e, MlflowException) else str(e)).splitlines()[0][:200]
        raise FerError(f"run {run.info.run_id}: its artifact {path} cannot be read from {run.info.artifact_uri} "
                       f"({why}); it was deleted or the store moved: point tracking.uri at the store that holds "
                       "it, or train the run again") from None


@dataclass
class Restored:
    cfg: DictConfig
    splits: Splits
    datamodule: FERDataModule
    module: FERModule


def restore(uri: str, run_id: str, data_cfg: DictConfig | None = None) -> tuple[object, Restored]:
    """The client of the store at `uri` and the run `run_id`'s model with its best weights, with its data (or
    `data_cfg` in its place)."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # a bar per small file only hides the rest
    client = client_for(uri)
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
    if data_cfg is not None:
        run_cfg.data = data_cfg
    splits = load_splits(run_cfg.data)
    if not splits.tests:
        splits.tests = {"val": splits.val}
    module = FERModule(OmegaConf.to_container(run_cfg, resolve=True), list(splits.tests))
    module.load_state_dict(state["state_dict"])
    return client, Restored(run_cfg, splits, FERDataModule(splits, run_cfg.data, run_cfg.aug), module)
