"""Tracking store trouble, on real processes: a server that is not there, one killed mid-run (restarted or
not), and four runs started together on one fresh sqlite store."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import forked
import pytest
from helpers import QUICK, MlflowServer, assert_complete_run, call_fer, free_port, run_fer, store
from mlflow.entities import Metric
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import RESOURCE_ALREADY_EXISTS, RESOURCE_DOES_NOT_EXIST
from mlflow.tracking import MlflowClient

from fer.tracking.delivering_client import DeliveringClient
from fer.tracking.retry import made_meanwhile, no_http_retries, when_free

SERVER_RUN = ["data.n_train=320", "data.n_val=96", "data.n_test=96", "trainer.progress_bar=false", "explain=none"]


class Training:
    """`python -m fer.train` against the server, in the background; stderr goes to a file read while it runs."""

    def __init__(self, server: MlflowServer, cwd: Path, experiment: str, *args: str):
        self.server, self.experiment, self.err = server, experiment, cwd / "stderr.txt"
        with open(self.err, "w") as err:
            self.proc = forked.Command("fer.train", "tracking=server", f"tracking.uri={server.url}",
                                       f"tracking.experiment={experiment}", *SERVER_RUN, *args, cwd=cwd,
                                       stdout=subprocess.PIPE, stderr=err)

    def stderr(self) -> str:
        return self.err.read_text()

    def kill_server_after_first_epoch(self) -> str:
        """Once the server holds the first epoch's metrics: freeze the run (SIGSTOP), SIGKILL the server, let
        the run go on (SIGCONT), so its later writes all meet a dead server. Returns the run id."""
        client = MlflowClient(self.server.url)
        while self.proc.poll() is None:
            exp = client.get_experiment_by_name(self.experiment)
            runs = client.search_runs([exp.experiment_id]) if exp else []
            if runs and client.get_metric_history(runs[0].info.run_id, "val_acc"):
                with self.frozen():
                    self.server.kill()
                return runs[0].info.run_id
            time.sleep(0.2)
        pytest.fail(f"the run ended before its first epoch reached the server:\n{self.stderr()[-3000:]}")

    @contextlib.contextmanager
    def frozen(self):
        os.kill(self.proc.pid, signal.SIGSTOP)
        try:
            yield
        finally:
            os.kill(self.proc.pid, signal.SIGCONT)

    def wait_for(self, pattern: str) -> None:
        while not re.search(pattern, self.stderr()):
            if self.proc.poll() is not None:
                pytest.fail(f"the run ended without saying {pattern!r}:\n{self.stderr()[-3000:]}")
            time.sleep(0.2)

    def finish(self) -> tuple[str, str]:
        out, _ = self.proc.communicate(timeout=600)
        assert self.proc.returncode == 0, f"exit {self.proc.returncode}\n{out[-3000:]}\n{self.stderr()[-3000:]}"
        return out, self.stderr()


def test_no_server_fails_fast_naming_the_uri(tmp_path):
    uri = f"http://127.0.0.1:{free_port()}"
    proc = call_fer("fer.train", "tracking=server", f"tracking.uri={uri}", *QUICK, "explain=none", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr[-3000:]
    (line,) = [x for x in proc.stderr.splitlines() if x.startswith("fer:")]
    assert line.startswith(f"fer: error: tracking.uri {uri}: nothing answers there") and "tracking=local" in line
    assert "Traceback" not in proc.stderr and "Epoch" not in proc.stdout
    assert not (tmp_path / "mlruns").exists() and not (tmp_path / "mlflow.db").exists()
    assert not list(tmp_path.rglob("*.ckpt"))


@pytest.mark.slow
@pytest.mark.xdist_group("mlflow_server")  # kills the session's server: its other tests wait on this worker
def test_server_killed_mid_run_and_restarted(mlflow_server, tmp_path):
    run = Training(mlflow_server, tmp_path, "restarted", "trainer.max_epochs=4")
    run_id = run.kill_server_after_first_epoch()
    run.wait_for(r"the tracking store \S+ does not answer \(.+\); training goes on")
    with run.frozen():  # the server comes back while training goes on
        mlflow_server.start()
    out, err = run.finish()
    assert re.search(r"delivered [1-9]\d* kept tracking calls", err) and "replay" not in err
    client = MlflowClient(mlflow_server.url)
    assert_complete_run(client, client.get_run(run_id), epochs=4)  # each epoch exactly once, artifacts too
    assert not (tmp_path / "mlflow-spool").exists()


@pytest.mark.slow
@pytest.mark.xdist_group("mlflow_server")  # kills the session's server: its other tests wait on this worker
def test_server_gone_for_good_leaves_a_spool_that_replays(mlflow_server, tmp_path):
    explain = ["explain=default", "explain.methods=[saliency]", "explain.every_n_epochs=1",
               "explain.filters.enabled=false", "explain.layer_outputs.enabled=false"]
    run = Training(mlflow_server, tmp_path, "gone", "trainer.max_epochs=3", "tracking.final_wait_s=1", *explain)
    run_id = run.kill_server_after_first_epoch()
    out, err = run.finish()
    assert f"({run_id}) finished" in out
    foreign = [line for line in err.splitlines() if line.strip() and not line.startswith("fer: ")]
    assert not foreign, foreign  # the dead store said once, by fer: not each of MLflow's retries
    assert "it occupies" not in out  # the store's share is not asked of a store that is away
    spool = Path(re.search(r"deliver them once it answers with: python -m fer.delivery replay (\S+)", err)[1])
    calls = [json.loads(line) for line in (spool / "calls.jsonl").read_text().splitlines()]
    last = calls[-1]
    assert (last["op"], last["run_id"], last["status"]) == ("set_terminated", run_id, "FINISHED")
    kept_steps = {m[3] for c in calls if c["op"] == "log_batch" for m in c["metrics"] if m[0] == "val_acc"}
    assert 2 in kept_steps and 0 not in kept_steps  # what the server held before it died is not kept again
    uploads = {Path(c["file"]).name for c in calls if "file" in c}
    assert {"curves.png", "confusion_matrix.png", "saliency.png", "saliency_saliency.png"} <= uploads
    assert all((spool / c["file"]).is_file() for c in calls if "file" in c)

    mlflow_server.start()
    run_fer("fer.delivery", "replay", str(spool), cwd=tmp_path)
    assert not spool.exists()
    client = MlflowClient(mlflow_server.url)
    run = client.get_run(run_id)
    assert_complete_run(client, run, epochs=3)
    assert "saliency_mask_ratio_saliency" in run.data.metrics
    assert {a.path for a in client.list_artifacts(run_id, "saliency")} == {"saliency/saliency.png"}
    images = [a.path for a in client.list_artifacts(run_id, "images") if a.path.endswith(".png")]
    assert sorted(int(p.split("+step+")[1].split("+")[0]) for p in images) == [0, 1, 2]


@pytest.mark.slow
@pytest.mark.xdist_group("mlflow_server")  # kills the session's server: its other tests wait on this worker
def test_a_refused_call_raises_and_is_not_kept(mlflow_server, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    client = DeliveringClient(MlflowClient(mlflow_server.url))
    with pytest.raises(MlflowException, match="RESOURCE_DOES_NOT_EXIST|not found"):
        client.log_batch("0" * 32, metrics=[Metric("m", 1.0, 0, 0)])
    assert not client.pending and not (tmp_path / "mlflow-spool").exists()


def test_a_locked_database_is_retried():
    calls = []

    def locked_twice():
        calls.append(1)
        if len(calls) < 3:
            raise MlflowException("(sqlite3.OperationalError) database is locked")
        return "written"

    assert when_free(locked_twice) == "written" and len(calls) == 3

    def refused():
        calls.append(1)
        raise MlflowException("UNIQUE constraint failed")

    with pytest.raises(MlflowException, match="UNIQUE"):
        when_free(refused)
    assert len(calls) == 4  # not retried


def test_a_row_another_process_made_at_the_same_moment_is_told_apart_in_each_database_s_words():
    """What a clash on a new dataset's key reads like from each store (the call made again finds the row), and what
    must not be taken for one."""
    clashes = ["(sqlite3.IntegrityError) UNIQUE constraint failed: datasets.experiment_id, datasets.name",
               'BAD_REQUEST: (psycopg2.errors.UniqueViolation) duplicate key value violates unique constraint '
               '"dataset_pk"', "(pymysql.err.IntegrityError) (1062, \"Duplicate entry '1-train' for key 'PRIMARY'\")"]
    assert all(made_meanwhile(MlflowException(text)) for text in clashes)
    assert made_meanwhile(MlflowException("exists", RESOURCE_ALREADY_EXISTS))
    assert not made_meanwhile(MlflowException("(sqlite3.OperationalError) database is locked"))
    assert not made_meanwhile(MlflowException("Run 'abc' not found", RESOURCE_DOES_NOT_EXIST))


def test_a_store_known_to_be_away_is_asked_once_not_at_each_retry(monkeypatch):
    """MLflow reads its retry setting at each request, so within `no_http_retries` a library's own call to a store
    fer knows is away (the system-metrics monitor's last look at its run) fails at its first try instead of waiting
    out the backoff (~3 s at the end of a run whose server died)."""
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "0")
    tries = []
    with socket.socket() as server:  # accepts each connection and hangs up without an answer, as a dying server
        server.bind(("127.0.0.1", 0))
        server.listen()

        def hang_up():
            with contextlib.suppress(OSError):
                while True:
                    connection, _ = server.accept()
                    tries.append(1)  # counted before the hang-up the client's error follows
                    connection.close()

        threading.Thread(target=hang_up, daemon=True).start()
        client = MlflowClient(f"http://127.0.0.1:{server.getsockname()[1]}")
        with no_http_retries(), pytest.raises(MlflowException):
            client.get_run("0" * 32)
        assert len(tries) == 1 and os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "2"
        with pytest.raises(MlflowException):
            client.get_run("0" * 32)
        assert len(tries) == 4  # the user's (or fer's) retries again outside it


@pytest.mark.slow
def test_four_runs_started_together_on_a_fresh_sqlite_store(tmp_path):
    """Started in the same second, each still gets its own output folder (the run dir holds the pid), so no run
    logs another's checkpoint."""
    tiny = ["trainer=debug", "explain=none", "data.n_train=64", "data.n_val=32", "data.n_test=32"]
    procs = [forked.Command("fer.train", *tiny, f"seed={i}", cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE) for i in range(4)]
    for proc in procs:
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, f"exit {proc.returncode}\n{out[-3000:]}\n{err[-3000:]}"
    client = store(tmp_path)
    assert sorted(e.name for e in client.search_experiments()) == ["Default", "fer"]
    runs = client.search_runs([client.get_experiment_by_name("fer").experiment_id])
    assert len(runs) == 4
    for run in runs:
        assert_complete_run(client, run, epochs=2)
    assert len({run.data.tags["fer.checkpoint_dir"] for run in runs}) == 4
