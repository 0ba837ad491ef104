"""The checkpoints a run keeps in its store: last.ckpt and the best it names, never every best there ever was."""

from __future__ import annotations

import os
import shutil
from types import SimpleNamespace

from mlflow.tracking import MlflowClient

from fer.tracking.checkpoints import CheckpointCopies


def test_a_newer_best_replaces_the_older_in_the_store(tmp_path, empty_store):
    shutil.copy(empty_store, tmp_path / "mlflow.db")
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    run_id = client.create_run(client.create_experiment("fer", artifact_location=str(tmp_path / "mlruns"))).info.run_id
    copies = CheckpointCopies(client, run_id, every=1)
    folder = tmp_path / "checkpoints"
    folder.mkdir()

    def epoch(k: int, best: int) -> set[str]:
        (folder / "last.ckpt").write_bytes(b"last %d" % k)
        os.utime(folder / "last.ckpt", ns=(k * 10**9, k * 10**9))  # a new file each epoch, as Lightning writes it
        if best == k:
            (folder / f"best-{k:02d}.ckpt").write_bytes(b"best %d" % k)
        copies.saved(SimpleNamespace(last_model_path=str(folder / "last.ckpt"),
                                     best_model_path=str(folder / f"best-{best:02d}.ckpt")))
        return {a.path for a in client.list_artifacts(run_id, "checkpoints")}

    assert epoch(0, best=0) == {"checkpoints/last.ckpt", "checkpoints/best-00.ckpt"}
    assert epoch(1, best=0) == {"checkpoints/last.ckpt", "checkpoints/best-00.ckpt"}
    assert epoch(2, best=2) == {"checkpoints/last.ckpt", "checkpoints/best-02.ckpt"}
    assert (tmp_path / "mlruns" / run_id / "artifacts" / "checkpoints" / "last.ckpt").read_bytes() == b"last 2"
