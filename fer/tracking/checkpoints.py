"""A run's checkpoints kept in its artifact store as well as on local disk, so that `resume=<id>` continues it
on another machine (a cluster requeues a job anywhere; a laptop dies): `last.ckpt` and the best checkpoint so far
go to `checkpoints/` every `trainer.checkpoint_upload_every` epochs, and come back from there when the local
folder is missing.

Lightning keeps the best checkpoint's absolute path in `last.ckpt`, so they come back into the folder the run
was started with (its `fer.checkpoint_dir` tag), made anew where it is missing.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from mlflow.exceptions import MlflowException
from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

from fer.console import say
from fer.errors import FerError
from fer.training.checkpoint import load_checkpoint

ARTIFACT_DIR = "checkpoints"
LAST = "last.ckpt"


class CheckpointCopies:
    """Told of every checkpoint Lightning saves (the logger's `after_save_checkpoint`, rank 0): each `every`-th
    new `last.ckpt` goes to the run's `checkpoints/`, after the best checkpoint it names when that changed, so a
    copy in the store never names a best one the store lacks."""

    def __init__(self, client, run_id: str, every: int):
        self.client, self.run_id, self.every = client, run_id, every
        self.sent: dict[str, int] = {}  # path → modification time of the copy sent
        self.epochs = 0  # new last.ckpt files seen

    def saved(self, checkpoint_callback) -> None:
        last = Path(checkpoint_callback.last_model_path or "")
        if self.every <= 0 or not last.is_file() or self.sent.get(str(last)) == last.stat().st_mtime_ns:
            return
        self.epochs += 1
        if self.epochs % self.every:
            self.sent[str(last)] = last.stat().st_mtime_ns  # seen, not sent: counted once
            return
        best = Path(checkpoint_callback.best_model_path or "")
        new_best = best.is_file() and self.sent.get(str(best)) != best.stat().st_mtime_ns
        for path in (best, last):
            if path.is_file() and (path == last or new_best):
                self.sent[str(path)] = path.stat().st_mtime_ns
                try:
                    self.client.log_artifact(self.run_id, str(path), ARTIFACT_DIR)
                except (MlflowException, OSError) as e:  # a store that refuses (quota, rights): train on
                    say(f"warning: the copy of {path.name} in the run's store failed "
                        f"({str(e).splitlines()[0][:200]}); the local checkpoint is kept", err=True)
                    return
        if new_best and not getattr(self.client, "pending", None):  # not while the store is away: calls are kept
            self._drop_older_bests(best.name)

    def _drop_older_bests(self, best: str) -> None:
        """The store's copies of best checkpoints that a newer best replaced: resume needs `last.ckpt` and the
        best it names, restore the best; the others would stay in the store for good (2 × 247 MB a VGG19 epoch)."""
        try:
            older = [a.path for a in self.client.list_artifacts(self.run_id, ARTIFACT_DIR)
                     if Path(a.path).name not in (best, LAST)]
            if older:
                repository = get_artifact_repository(self.client.get_run(self.run_id).info.artifact_uri)
                for path in older:
                    repository.delete_artifacts(path)
        except (MlflowException, OSError, NotImplementedError) as e:  # a store that keeps them: they stay
            say(f"note: older best checkpoints stay in the run's store ({str(e).splitlines()[0][:200]})", err=True)


def fetch(client, run_id: str, folder: Path) -> Path | None:
    """`last.ckpt` of run `run_id` from its artifact store into `folder` (made if missing), with the best
    checkpoint it names; the local path of last.ckpt, or None when the store keeps none."""
    names = {Path(a.path).name for a in _listing(client, run_id)}
    if LAST not in names:
        return None
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise FerError(f"run {run_id}: cannot make its checkpoint folder {folder} ({e.strerror}) to continue it "
                       "there: resume from a machine where that path can be written") from None
    last = _download(client, run_id, LAST, folder)
    state = load_checkpoint(str(last), f"run {run_id}: its stored {ARTIFACT_DIR}/{LAST}")
    best = next((s.get("best_model_path") for k, s in state.get("callbacks", {}).items()
                 if k.startswith("ModelCheckpoint") and isinstance(s, dict)), None)
    fetched_best = bool(best) and Path(best).name in names and not Path(best).is_file()
    if fetched_best:
        _download(client, run_id, Path(best).name, Path(best).parent)
    say(f"fetched run {run_id}'s {ARTIFACT_DIR}/{LAST}" + (f" and {Path(best).name}" if fetched_best else "")
        + f" from its artifact store into {folder}")
    return last


def _listing(client, run_id: str):
    try:
        return client.list_artifacts(run_id, ARTIFACT_DIR)
    except (MlflowException, OSError) as e:
        raise FerError(f"run {run_id}: its artifact store cannot be listed ({str(e).splitlines()[0][:200]}); "
                       "point tracking.uri at the store that holds it") from None


def _download(client, run_id: str, name: str, folder: Path) -> Path:
    with tempfile.TemporaryDirectory() as tmp:
        try:
            got = client.download_artifacts(run_id, f"{ARTIFACT_DIR}/{name}", tmp)
        except (MlflowException, OSError) as e:
            raise FerError(f"run {run_id}: its artifact {ARTIFACT_DIR}/{name} cannot be read "
                           f"({str(e).splitlines()[0][:200]})") from None
        target = folder / name
        partial = folder / f".{name}.{os.getpid()}.part"
        shutil.copyfile(got, partial)
        os.replace(partial, target)  # whole or not at all, also with another rank fetching the same file
    return target
