"""`python -m fer.predict run_id=… data=hw3 data.path=…`: a Kaggle-style `id,label` csv from a run's model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from fer.cli import entry_point, restore
from fer.data.splits import Split
from fer.training.trainer import inference_trainer


def rows_to_predict(splits) -> Split:
    """The unlabeled rows (HW3's test.csv); without any, the labeled test splits in order."""
    if splits.predict is not None:
        return splits.predict
    parts = list(splits.tests.values())
    return Split(np.concatenate([p.images for p in parts]), np.concatenate([p.labels for p in parts]),
                 rows=np.concatenate([p.rows if p.rows is not None else np.arange(1, len(p) + 1) for p in parts]))


@entry_point("predict")
def main(cfg) -> None:
    _, r = restore(cfg.tracking.uri, cfg.run_id, cfg.get("data"))
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
