"""`python -m fer.predict run_id=… data=hw3 data.path=…`: a Kaggle-style `id,label` csv from a run's model."""

from __future__ import annotations

from pathlib import Path

import hydra
import numpy as np
import torch

from fer.config import reports_config_errors  # also registers the config schemas
from fer.data.split import Split
from fer.errors import guarded
from fer.runs import client_and_data, restore
from fer.trainer import inference_trainer


def rows_to_predict(splits) -> Split:
    """The unlabeled rows (HW3's test.csv); without any, the labeled test splits in order."""
    if splits.predict is not None:
        return splits.predict
    parts = list(splits.tests.values())
    return Split(np.concatenate([p.images for p in parts]), np.concatenate([p.labels for p in parts]),
                 rows=np.concatenate([p.rows if p.rows is not None else np.arange(1, len(p) + 1) for p in parts]))


@reports_config_errors
@hydra.main(version_base="1.3", config_path="../conf", config_name="predict")
@guarded
def main(cfg) -> None:
    client, data_cfg = client_and_data(cfg)
    r = restore(client, cfg.run_id, data_cfg)
    target = rows_to_predict(r.splits)
    r.splits.predict = target
    probs = torch.cat(inference_trainer(cfg.accelerator).predict(r.module, datamodule=r.datamodule))
    labels = probs.argmax(dim=1).numpy()
    ids = target.ids if target.ids is not None else target.rows
    out = Path(cfg.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w") as f:
        f.write("id,label\n")
        f.writelines(f"{i},{int(y)}\n" for i, y in zip(ids, labels, strict=True))
    print(f"fer: wrote {len(labels)} predictions to {out.resolve()}")


if __name__ == "__main__":
    main()
