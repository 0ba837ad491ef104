"""The delivering client: tracking writes that survive the store going away mid-run.

Every write fer makes into a run (Lightning's metrics, params, tags, texts, figures, artifacts, the final
status) goes through one `DeliveringClient` per store, so writes reach the store in the order they were made.
When the store does not answer, a write is kept — in memory and in the spool (fer/tracking/spool.py) — and
training goes on. Kept calls are retried in order on later writes once the store answers again, and at the end of
a run (`set_terminated`); what still cannot be delivered stays in the spool, whose path is printed with the command
that replays it: `python -m fer.delivery replay <spool> [--uri URI]` (light: no torch import).
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import json
import posixpath
import shutil
import sys
import tempfile
import time
from pathlib import Path

import yaml
from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from fer.config.schema import TrackingConfig
from fer.console import say
from fer.errors import EXIT_CODES, DataError
from fer.stops import Stopped, stops_between_items
from fer.tracking.retry import reason, transient, unreachable, when_free
from fer.tracking.spool import Spool, deliver

PROBE_EVERY_S = 2.0  # while calls are kept, how often a write asks whether the store answers again
REPLAY = "python -m fer.delivery replay"


def now_ms() -> int:
    return int(time.time() * 1000)


class DeliveringClient:
    """MlflowClient's write methods, delivered in order or kept until they can be (see the module doc).
    Reads and run creation go straight to the store: a run cannot start without one."""

    def __init__(self, client: MlflowClient, spool: Spool | None = None, pending: list[dict] | None = None):
        self.client, self.spool, self.pending = client, spool, pending or []
        self.history: dict[tuple[str, str], list[Metric]] = {}
        self.next_probe = 0.0
        self.reported = False
        self.exit_hook = False
        self.between_calls = lambda: None  # after each delivered call (and the spool saved): where a stop may land
        self.final_wait_s = TrackingConfig.final_wait_s  # a run's end retries a store that went away this long

    def __getattr__(self, name):
        client = self.__dict__.get("client")
        if client is None:
            raise AttributeError(name)
        attr = getattr(client, name)
        return functools.partial(when_free, attr) if callable(attr) else attr

    @property
    def uri(self) -> str:
        return self.client.tracking_uri

    # writes

    def log_batch(self, run_id: str, metrics=(), params=(), tags=(), synchronous=None) -> None:
        for m in metrics:
            self.history.setdefault((run_id, m.key), []).append(m)
        self._send({"op": "log_batch", "run_id": run_id,
                    "metrics": [[m.key, m.value, m.timestamp, m.step] for m in metrics],
                    "params": [[p.key, p.value] for p in params], "tags": [[t.key, t.value] for t in tags]})

    def log_metric(self, run_id: str, key: str, value: float, timestamp: int | None = None,
                   step: int | None = None, **_) -> None:
        self.log_batch(run_id, metrics=[Metric(key, value, timestamp or now_ms(), step or 0)])

    def log_param(self, run_id: str, key: str, value, **_) -> None:
        self.log_batch(run_id, params=[Param(key, str(value))])

    def set_tag(self, run_id: str, key: str, value, **_) -> None:
        self.log_batch(run_id, tags=[RunTag(key, str(value))])

    def log_artifact(self, run_id: str, local_path, artifact_path: str | None = None) -> None:
        self._send({"op": "log_artifact", "run_id": run_id, "file": str(Path(local_path).resolve()),
                    "artifact_path": artifact_path})

    def log_text(self, run_id: str, text: str, artifact_file: str) -> None:
        self._log_file(run_id, artifact_file, lambda path: path.write_text(text, encoding="utf-8"))

    def log_dict(self, run_id: str, dictionary: dict, artifact_file: str) -> None:
        def write(path: Path) -> None:
            with open(path, "w") as f:  # as MlflowClient.log_dict writes it
                if path.suffix in (".yml", ".yaml"):
                    yaml.dump(dictionary, f, indent=2, default_flow_style=False)
                else:
                    json.dump(dictionary, f, indent=2, default=str)

        self._log_file(run_id, artifact_file, write)

    def log_figure(self, run_id: str, figure, artifact_file: str, save_kwargs: dict | None = None) -> None:
        self._log_file(run_id, artifact_file, lambda path: figure.savefig(path, **(save_kwargs or {})))

    def log_image(self, run_id: str, image, key: str, step: int = 0, timestamp: int | None = None) -> None:
        """A per-step image (`key`, `step`), as MLflow's image charts show it."""
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"{key.replace('/', '~')}.png"
            image.save(path)
            self._send({"op": "log_image", "run_id": run_id, "file": str(path), "key": key, "step": step,
                        "timestamp": timestamp or now_ms()})

    def set_terminated(self, run_id: str, status: str | None = None, end_time: int | None = None) -> None:
        """The last call of a run: it also gives kept calls a last chance, then says where the rest are."""
        self._send({"op": "set_terminated", "run_id": run_id, "status": status or "FINISHED",
                    "end_time": end_time or now_ms()})
        self.flush(self.final_wait_s)

    # reads that must not fail a run whose store went away

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        """The store's history plus the kept values; only this process's own writes while the store is away."""
        if self.pending and unreachable(self.uri, timeout=2):
            return list(self.history.get((run_id, key), []))
        kept = [Metric(*m) for c in self.pending if c["op"] == "log_batch" and c["run_id"] == run_id
                for m in c["metrics"] if m[0] == key]
        try:
            return when_free(self.client.get_metric_history, run_id, key) + kept
        except MlflowException as e:
            if not transient(e):
                raise
            return list(self.history.get((run_id, key), []))

    # delivery

    def flush(self, wait_s: float = 0.0) -> bool:
        """Deliver kept calls, trying for up to `wait_s`; say where the rest are kept. True when none are left."""
        deadline = time.monotonic() + wait_s
        while self.pending:
            self.next_probe = 0.0
            self._retry()
            if not self.pending or time.monotonic() >= deadline:
                break
            time.sleep(1.0)
        if self.pending and not self.reported:
            self.reported = True
            say(f"warning: {len(self.pending)} tracking calls could not be delivered to {self.uri}; "
                f"they are kept in {self.spool.root}", err=True)
            say(f"  deliver them once it answers with: {REPLAY} {self.spool.root}", err=True)
        return not self.pending

    def _log_file(self, run_id: str, artifact_file: str, write) -> None:
        """Write the artifact under its own name in a temporary folder and log that file."""
        folder, name = posixpath.split(artifact_file)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / name
            write(path)
            self._send({"op": "log_artifact", "run_id": run_id, "file": str(path), "artifact_path": folder or None})

    def _send(self, call: dict) -> None:
        if self.pending:
            self._retry()
        if not self.pending:
            try:
                when_free(deliver, self.client, call, Path("/"))
                return
            except Exception as e:
                if not transient(e):
                    raise
                self._keep(call)
                say(f"warning: the tracking store {self.uri} does not answer ({reason(e)}); training goes on, "
                    f"its tracking calls are kept in {self.spool.root} until it does", err=True)
                return
        self._keep(call)

    def _keep(self, call: dict) -> None:
        if self.spool is None:
            self.spool = Spool.create(self.uri)
        if not self.exit_hook:
            self.exit_hook = True
            atexit.register(self._at_exit)
        self.spool.keep_file(call)
        self.pending.append(call)
        self.spool.save(self.pending)
        self.reported = False

    def _retry(self) -> None:
        """Deliver kept calls in order while the store answers; stop at the first that it does not take."""
        if time.monotonic() < self.next_probe:
            return
        if unreachable(self.uri, timeout=2):
            self.next_probe = time.monotonic() + PROBE_EVERY_S
            return
        delivered = 0
        while self.pending:
            try:
                when_free(deliver, self.client, self.pending[0], self.spool.root)
            except Exception as e:
                if not transient(e):
                    raise
                self.next_probe = time.monotonic() + PROBE_EVERY_S
                return
            self.spool.drop_file(self.pending.pop(0))
            self.spool.save(self.pending)
            delivered += 1
            if self.pending:
                self.between_calls()
        shutil.rmtree(self.spool.root, ignore_errors=True)
        with contextlib.suppress(OSError):
            self.spool.root.parent.rmdir()  # mlflow-spool/ itself, when no other spool is left in it
        say(f"delivered {delivered} kept tracking calls to {self.uri}; {self.spool.root} removed", err=True)
        self.spool = None

    def _at_exit(self) -> None:
        if self.pending and not self.reported:
            self.flush(self.final_wait_s)


def replay(root: Path, uri: str | None = None) -> bool:
    """Deliver a spool's calls in order (to `uri`, or the store they were meant for); True when all were. Ctrl-C
    or SIGTERM stops between two calls, the spool holding exactly the calls not yet delivered."""
    spool = Spool(root)
    calls = spool.load()
    total = len(calls)
    client = DeliveringClient(MlflowClient(uri or spool.uri()), spool, calls)
    client.reported = True  # replay says itself what is left
    with stops_between_items() as stops:
        client.between_calls = stops.carry_out
        try:
            client.flush()
        except Stopped as stop:
            say(f"stopped by {stop.cause}: {total - len(client.pending)} of {total} calls delivered; the "
                f"other {len(client.pending)} stay in {spool.root}: run the same command to go on", err=True)
            sys.exit(EXIT_CODES[stop.cause])
        except Exception as e:
            raise DataError(spool.calls_file, f"the store refused this {client.pending[0]['op']} call: {reason(e)}",
                            1) from None
    if client.pending:
        say(f"error: {client.uri} did not take the calls ({total - len(client.pending)} of {total} "
            f"delivered); they stay in {spool.root}: run the same command once it answers", err=True)
    return not client.pending
