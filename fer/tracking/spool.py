"""The spool: what is kept on disk while the tracking store is away, and how it is read back.

A kept call is one JSON object (`op`, `run_id` and the call's arguments) on one line of `calls.jsonl`, oldest first;
a file it uploads is copied under `files/` (temporary files vanish before the store is back), and `meta.json` names
the tracking URI the calls are meant for. `deliver` makes one such call against a store, for the delivering client
that retries its kept calls and for `python -m fer.delivery replay`.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from pathlib import Path

from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

from fer.errors import DataError

SPOOL_ROOT = Path("mlflow-spool")


class Spool:
    """Kept calls on disk: `calls.jsonl` (one call a line, oldest first), the files they upload under `files/`,
    and `meta.json` with the tracking URI they are meant for."""

    def __init__(self, root: Path):
        self.root = Path(root).resolve()

    @classmethod
    def create(cls, uri: str) -> Spool:
        root = SPOOL_ROOT / f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
        (root / "files").mkdir(parents=True)
        (root / "meta.json").write_text(json.dumps({"tracking_uri": uri}) + "\n")
        return cls(root)

    @property
    def calls_file(self) -> Path:
        return self.root / "calls.jsonl"

    def uri(self) -> str:
        return json.loads((self.root / "meta.json").read_text())["tracking_uri"]

    def keep_file(self, call: dict) -> None:
        """Copy the file (or folder) a call uploads into the spool, under its own name, and point the call at it."""
        if "file" not in call or not Path(call["file"]).is_absolute():
            return
        src = Path(call["file"])
        rel = Path("files", uuid.uuid4().hex[:12], src.name)
        (self.root / rel).parent.mkdir(parents=True)
        (shutil.copytree if src.is_dir() else shutil.copy2)(src, self.root / rel)
        call["file"] = rel.as_posix()

    def drop_file(self, call: dict) -> None:
        if "file" in call and not Path(call["file"]).is_absolute():
            shutil.rmtree((self.root / call["file"]).parent, ignore_errors=True)

    def save(self, calls: list[dict]) -> None:
        tmp = self.root / "calls.jsonl.tmp"
        tmp.write_text("".join(json.dumps(c) + "\n" for c in calls))
        tmp.replace(self.calls_file)

    def load(self) -> list[dict]:
        if not self.calls_file.is_file():
            raise DataError(self.calls_file, "missing: not a tracking spool folder (or it was delivered already)")
        calls = []
        for n, line in enumerate(self.calls_file.read_text().splitlines(), 1):
            try:
                calls.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise DataError(self.calls_file, f"not a JSON call ({e.msg})", n) from None
        return calls


def deliver(client: MlflowClient, call: dict, root: Path) -> None:
    """Make one call (as kept in a spool) against the store; files are relative to `root` unless absolute."""
    op, run_id = call["op"], call["run_id"]
    if op == "log_batch":
        client.log_batch(run_id, metrics=[Metric(k, v, t, s) for k, v, t, s in call["metrics"]],
                         params=[Param(k, v) for k, v in call["params"]], tags=[RunTag(k, v) for k, v in call["tags"]])
    elif op == "log_artifact":
        client.log_artifact(run_id, str(root / call["file"]), call["artifact_path"])
    elif op == "log_image":
        from PIL import Image

        with Image.open(root / call["file"]) as image:
            client.log_image(run_id, image, key=call["key"], step=call["step"], timestamp=call["timestamp"])
    elif op == "set_terminated":
        client.set_terminated(run_id, call["status"], call["end_time"])
    else:
        raise ValueError(f"unknown tracking call {op!r}")
