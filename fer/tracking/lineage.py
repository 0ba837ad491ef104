"""What a run trained, selected and tested on, as MLflow dataset inputs: one per split, with a digest of its
rows, where they came from and how many of each class, so the UI's Datasets column tells runs on other data
apart."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
from mlflow.data.code_dataset_source import CodeDatasetSource
from mlflow.data.numpy_dataset import from_numpy
from mlflow.entities import DatasetInput, InputTag
from mlflow.exceptions import MlflowException

from fer.data.load import DATASETS
from fer.data.splits import Split, Splits
from fer.tracking import tags
from fer.tracking.retry import made_meanwhile
from fer.tracking.store import store_lock


def digest(split: Split) -> str:
    """8 hex digits of the split's pixels and labels: equal exactly when the rows are."""
    h = hashlib.sha256(np.ascontiguousarray(split.images).tobytes())
    h.update(split.labels.astype(np.int64).tobytes())
    return h.hexdigest()[:8]


def source_of(data_cfg):
    """The file the rows were read from, or the generator and its settings."""
    if DATASETS.get(data_cfg.name).needs_path:
        return str(Path(data_cfg.path).expanduser().resolve())
    return CodeDatasetSource({"generator": "fer.data.synthetic", "seed": str(data_cfg.seed),
                              "noise": str(data_cfg.noise)})


def dataset_inputs(splits: Splits, data_cfg) -> list[DatasetInput]:
    """One input per split: training, validation, then each test split (context `test`, named by the split)."""
    named = [("train", "training", splits.train), ("val", "validation", splits.val),
             *((f"test_{k}" if k != "test" else "test", "test", v) for k, v in splits.tests.items())]
    source = source_of(data_cfg)
    inputs = []
    for name, context, split in named:
        dataset = from_numpy(split.images, source=source, targets=split.labels, name=f"{data_cfg.name}-{name}",
                             digest=digest(split))
        counts = np.bincount(split.labels[split.labels >= 0], minlength=len(splits.classes)).tolist()
        inputs.append(DatasetInput(dataset._to_mlflow_entity(),  # what mlflow.log_input sends, for a given run id
                                   tags=[InputTag(tags.DATASET_CONTEXT, context),
                                         InputTag(tags.CLASS_COUNTS, json.dumps(counts)),
                                         InputTag(tags.CLASSES, json.dumps(list(splits.classes)))]))
    return inputs


def log_dataset_inputs(client, run_id: str, inputs: list[DatasetInput]) -> None:
    """Log `inputs` to the run. MLflow makes a dataset on first use without guarding against another process making
    the same one at once (the parallel jobs of a sweep on one data set): a sqlite store is locked around it, and a
    clash on a server's database is made again once, when the winner's dataset is there to be found."""
    for attempt in (1, 2):
        try:
            with store_lock(client.tracking_uri):
                client.log_inputs(run_id, datasets=inputs)
            return
        except MlflowException as e:
            if attempt == 2 or not made_meanwhile(e):
                raise
