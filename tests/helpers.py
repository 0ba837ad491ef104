"""What the tests share: running fer's commands as a user would, reading the MLflow store they leave, writing
tiny data files in each public format, and a real `mlflow server` on loopback."""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import pickle
import runpy
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from unittest import mock

import forked
import numpy as np
import torch
from hydra.core.global_hydra import GlobalHydra
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf
from PIL import Image

from fer.config.options import compose
from fer.data.datamodule import FERDataModule
from fer.data.load import load_splits
from fer.labels import EMOTIONS
from fer.runs.validate import validate
from fer.tracking import tags
from fer.training.module import FERModule

# --- running fer ----------------------------------------------------------------------------------------

# Small synthetic runs: enough to exercise every code path, short enough for the CPU suite budget.
QUICK = ["data.n_train=480", "data.n_val=160", "data.n_test=160", "trainer.max_epochs=2", "trainer.progress_bar=false",
         "tracking.log_model=false"]
# The shared cnn run also renders its explanations every epoch, with a shorter gradient ascent.
CNN_ARGS = [*QUICK, "explain.every_n_epochs=1", "explain.filters.steps=10"]
# The cnn at half its width, a face in 0.4 of the time, for the tests of a run's life rather than of the model: it
# still learns (a search tells a good learning rate from a bad one), and 2,000 faces still make an epoch of seconds.
SLIM_CNN = ["model.channels=[16,32,32,32]", "model.hidden=64"]


def composed(*overrides: str):
    """The training config as `python -m fer.train <overrides>` would compose it."""
    GlobalHydra.instance().clear()
    return compose("config", list(overrides))


TINY_DNN = ["model=dnn", "model.hidden=[16]"]
TINY_RESNET = ["model=resnet", "model.stem=4", "model.widths=[8]", "model.blocks=[1]"]  # takes any face size
TINY = [*TINY_DNN, "data.n_train=100", "data.n_val=40", "data.n_test=40",
        "data.batch_size=16", "trainer.accelerator=cpu", "trainer.max_epochs=2", "trainer.progress_bar=false",
        "explain=none"]


def tiny(*overrides: str):
    """A config, its data module and model: a one-layer DNN on 100 synthetic faces, batches of 16."""
    base = [o for o in TINY if o not in TINY_DNN] if any(o.startswith("model=") for o in overrides) else TINY
    cfg = validate(composed(*base, *overrides))
    torch.manual_seed(0)
    splits = load_splits(cfg.data)
    dm = FERDataModule(splits, cfg.data, cfg.aug)
    return cfg, dm, FERModule(OmegaConf.to_container(cfg, resolve=True), dm.test_names)


def run_fer(module: str, *args: str, cwd: Path, check: bool = True, env: dict | None = None, fresh: bool = False
            ) -> subprocess.CompletedProcess:
    """`python -m <module> <args>` as its own process: forked from the server that imported fer once (forked.py), or
    with `fresh` a new interpreter, for what only one can show."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    if fresh:
        proc = subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, capture_output=True, text=True,
                              env=env, timeout=600)
    else:
        proc = forked.run(module, *args, cwd=cwd, env=env)
    if check and proc.returncode != 0:
        raise AssertionError(f"{module} {' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def call_fer(module: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    """`python -m <module> <args>` run inside this process the way `-m` runs it (runpy as __main__, so through
    Hydra and fer's error guard alike), without run_fer's ~6 s interpreter start. The working directory and the
    environment (Lightning's PL_GLOBAL_SEED) are restored afterwards."""
    GlobalHydra.instance().clear()
    out, err, code = io.StringIO(), io.StringIO(), 0
    with (contextlib.chdir(cwd), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err),
          mock.patch.object(sys, "argv", [module, *args]), mock.patch.dict(os.environ)):
        try:
            runpy.run_module(module, run_name="__main__", alter_sys=True)
        except SystemExit as e:
            code = forked.exit_status(e)
    return subprocess.CompletedProcess([module, *args], code, out.getvalue(), err.getvalue())


# --- reading the store ----------------------------------------------------------------------------------


def store(cwd: Path) -> MlflowClient:
    return MlflowClient(f"sqlite:///{cwd / 'mlflow.db'}")


def only_run(cwd: Path):
    client = store(cwd)
    runs = [r for e in client.search_experiments() for r in client.search_runs([e.experiment_id])]
    assert len(runs) == 1, [r.info.run_name for r in runs]
    return client, runs[0]


EPOCH_METRICS = ("train_loss", "train_acc", "val_loss", "val_acc", "val_f1", "lr")
ARTIFACTS = ("config.yaml", "model_summary.txt", "confusion_matrix.png", "confusion_matrix.json",
             "confused_pairs.md", "curves.png")


def artifact_bytes(client, run_id: str, path: str) -> bytes:
    with tempfile.TemporaryDirectory() as tmp, open(client.download_artifacts(run_id, path, tmp), "rb") as f:
        return f.read()


def checkpoint_param_count(client, run) -> int:
    """Parameters of the network counted from the saved weights, not from fer's own model code."""
    with tempfile.TemporaryDirectory() as tmp:
        state = torch.load(client.download_artifacts(run.info.run_id, run.data.tags[tags.CHECKPOINT], tmp),
                           weights_only=True)["state_dict"]
    buffers = ("running_mean", "running_var", "num_batches_tracked")
    return sum(v.numel() for k, v in state.items() if k.startswith("net.") and not k.endswith(buffers))


def assert_complete_run(client, run, epochs: int):
    assert run.info.status == "FINISHED"
    rid = run.info.run_id
    for key in EPOCH_METRICS:
        steps = sorted(m.step for m in client.get_metric_history(rid, key))
        assert steps == list(range(epochs)), (key, steps)
    metrics = run.data.metrics
    assert 0.0 <= metrics["test_acc"] <= 1.0
    assert any(f"test_acc_{c}" in metrics for c in EMOTIONS)
    params = run.data.params
    for key in ("model.name", "act.name", "norm.name", "aug.name", "optim.lr", "data.batch_size"):
        assert key in params
    assert int(params["params_total"]) == checkpoint_param_count(client, run)
    assert int(params["params_total"]) == int(params["params_trainable"]) + int(params["params_non_trainable"])
    names = {a.path for a in client.list_artifacts(rid)}
    assert set(ARTIFACTS) <= names, names
    assert [a.path for a in client.list_artifacts(rid, "checkpoints")]
    for png in ("confusion_matrix.png", "curves.png"):
        with Image.open(io.BytesIO(artifact_bytes(client, rid, png))) as im:
            im.load()
            assert im.width > 300 and im.height > 200
    summary = artifact_bytes(client, rid, "model_summary.txt").decode()
    assert f"Total params: {int(params['params_total']):,}" in summary and "Output Shape" in summary


# --- data files -----------------------------------------------------------------------------------------


def faces(n: int, seed: int = 0) -> np.ndarray:
    images = np.random.default_rng(seed).integers(0, 256, (n, 48, 48), dtype=np.uint8)
    images[0, 0, :2] = (0, 255)  # the extremes survive the round trip
    return images


def pixel_text(image: np.ndarray) -> str:
    return " ".join(map(str, image.ravel()))


def write_fer_csv(path, images, labels, usages=None, newline="\n"):
    """A Kaggle-style fer2013.csv (Usage column only when `usages` is given)."""
    lines = ["emotion,pixels" + (",Usage" if usages is not None else "")]
    for i, (image, label) in enumerate(zip(images, labels, strict=True)):
        lines.append(f"{label},{pixel_text(image)}" + (f",{usages[i]}" if usages is not None else ""))
    text = newline.join(lines) + newline
    if str(path).endswith(".gz"):
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text, newline="")
    return path


FERPLUS_HEADER = "Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF"


def write_ferplus(path, usages, votes, names=None, header=FERPLUS_HEADER):
    """A fer2013new.csv: per row its Usage, image name (fer0000000.png unless `names` says, "" for none) and ten
    vote counts."""
    names = names if names is not None else [f"fer{i:07d}.png" for i in range(len(usages))]
    lines = [header] + [f"{u},{n}," + ",".join(map(str, v)) for u, n, v in zip(usages, names, votes, strict=True)]
    path.write_text("\n".join(lines) + "\n")
    return path


def ferplus_votes(labels) -> list[list[int]]:
    """Ten votes per face, all for its class (FER+ column order)."""
    return [[10 if k == label else 0 for k in range(10)] for label in labels]


def write_hw3(folder, train_images, train_labels, test_images=None, test_ids=None):
    folder.mkdir(exist_ok=True)
    rows = zip(train_labels, train_images, strict=True)
    lines = ["label,feature"] + [f"{lab},{pixel_text(im)}" for lab, im in rows]
    (folder / "train.csv").write_text("\n".join(lines) + "\n")
    if test_images is not None:
        rows = zip(test_ids, test_images, strict=True)
        lines = ["id,feature"] + [f"{i},{pixel_text(im)}" for i, im in rows]
        (folder / "test.csv").write_text("\n".join(lines) + "\n")
    return folder


def save(path, image: np.ndarray, mode="L"):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).convert(mode).save(path)


# --- photos -----------------------------------------------------------------------------------------------

ASTRONAUT_FACE = (175, 60, 275, 165)  # left, top, right, bottom of Eileen Collins's face in skimage's astronaut.png


def astronaut() -> np.ndarray:
    """A real face photograph, RGB 512×512, as scikit-image ships it inside its wheel."""
    import skimage.data

    return skimage.data.astronaut()


def write_photos(folder: Path) -> dict[str, int]:
    """Photos a user might have, with how many faces each holds: one face (JPEG), the same photo twice side by
    side (PNG), a photo of coffee (WebP), and a file that is no image."""
    import skimage.data

    folder.mkdir(parents=True, exist_ok=True)
    face = astronaut()
    Image.fromarray(face).save(folder / "astronaut.jpg", quality=92)
    Image.fromarray(np.concatenate([face, face], axis=1)).save(folder / "two_astronauts.png")
    Image.fromarray(skimage.data.coffee()).save(folder / "coffee.webp")
    (folder / "notes.jpg").write_text("not an image")
    return {"astronaut.jpg": 1, "two_astronauts.png": 2, "coffee.webp": 0}


def vgg_params(depth: int, width: int) -> int:
    """VGG-BN on 1×48×48 counted from the paper's layout: 3×3 convs (no bias, BN adds 2 per channel)."""
    stages = {16: [[64, 64], [128, 128], [256] * 3, [512] * 3, [512] * 3],
              19: [[64, 64], [128, 128], [256] * 4, [512] * 4, [512] * 4]}[depth]
    total, c_in = 0, 1
    for stage in stages:
        for c in stage:
            total += 9 * c_in * c + 2 * c
            c_in = c
    return total + (512 * width + width) + (width * width + width) + (width * 7 + 7)


class _Payload:
    """What a tampered checkpoint runs on an unpickling load: it touches `marker`."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (self.marker.touch, ())


def tamper(checkpoint: Path, marker: Path) -> None:
    """Replace `checkpoint` by a pickle that would create `marker` if anything unpickled it."""
    marker.unlink(missing_ok=True)
    checkpoint.write_bytes(pickle.dumps({"state_dict": _Payload(marker)}))


# --- a real mlflow server -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MlflowServer:
    """`mlflow server` on a free loopback port: sqlite and a local folder by default, or the `backend` and
    `artifacts` URIs given (PostgreSQL, s3://). Restarted on the same port."""

    def __init__(self, root: Path, app_name: str | None = None, env: dict | None = None, backend: str | None = None,
                 artifacts: str | None = None):
        self.root, self.port, self.app_name, self.env = root, free_port(), app_name, env or {}
        self.url = f"http://127.0.0.1:{self.port}"
        self.backend = backend or f"sqlite:///{root / 'server.db'}"
        self.artifacts = artifacts or root / "server-artifacts"
        self.proc: subprocess.Popen | None = None

    def start(self) -> MlflowServer:
        """Start it and wait until it answers; one worker and no job runner keep it light."""
        env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", **self.env}
        app = ["--app-name", self.app_name] if self.app_name else []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(self.port),
             "--workers", "1", "--backend-store-uri", self.backend,
             "--artifacts-destination", str(self.artifacts), *app],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if urllib.request.urlopen(f"{self.url}/health", timeout=1).status == 200:
                    return self
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"mlflow server on {self.url} did not come up in 90 s")

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL the server and its workers (its own process group), as a crash would."""
        self._signal(signal.SIGKILL)

    def stop(self) -> None:
        self._signal(signal.SIGTERM)

    def _signal(self, sig: int) -> None:
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, sig)
            self.proc.wait(timeout=30)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self._wait_closed()
        self.proc = None

    def _wait_closed(self) -> None:
        """Wait until the port refuses connections: the workers die just after the process they belong to."""
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
            except OSError:
                return
            time.sleep(0.1)

    def __enter__(self) -> MlflowServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


# --- a team's store: PostgreSQL and an S3 endpoint, on loopback -------------------------------------------

PG_BIN = next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)), None) if Path(
    "/usr/lib/postgresql").is_dir() else None


def postgres_missing() -> str | None:
    """Why a private PostgreSQL cannot be started here (None when it can)."""
    if PG_BIN is None or not (PG_BIN / "initdb").exists():
        return "PostgreSQL is not installed (Debian's postgresql package; .ci/run installs it with apt-get)"
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "running as root without runuser: PostgreSQL refuses to run as root"
    return None


class Postgres:
    """A private PostgreSQL cluster (`initdb` in a temporary folder, `pg_ctl` on a free loopback port), trusting
    local connections; as root its processes run as the `postgres` user, which it insists on."""

    def __init__(self):
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="fer-pg-"))
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.as_user:
            shutil.chown(self.root, "postgres")

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run([*self.as_user, str(PG_BIN / tool), *args], check=True, capture_output=True, timeout=120)

    def start(self) -> Postgres:
        self._run("initdb", "-D", str(self.root / "data"), "-U", "fer", "--auth=trust", "-E", "UTF8")
        self._run("pg_ctl", "-D", str(self.root / "data"), "-l", str(self.root / "log"), "-w", "-o",
                  f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off", "start")
        return self

    def database(self, name: str) -> str:
        """A new database; its SQLAlchemy URL."""
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "fer", name)
        return f"postgresql+psycopg2://fer@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self._run("pg_ctl", "-D", str(self.root / "data"), "-m", "immediate", "stop")
        shutil.rmtree(self.root, ignore_errors=True)


S3_KEYS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


class S3Server:
    """moto's S3 in server mode on a free loopback port, with one bucket."""

    def __init__(self, bucket: str = "fer-artifacts"):
        self.port, self.bucket = free_port(), bucket
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**S3_KEYS, "MLFLOW_S3_ENDPOINT_URL": self.url}
        self.proc: subprocess.Popen | None = None

    def start(self) -> S3Server:
        self.proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 60
        while True:
            try:
                self.client().create_bucket(Bucket=self.bucket)
                return self
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)

    def client(self):
        import boto3

        return boto3.client("s3", endpoint_url=self.url, aws_access_key_id="testing",
                            aws_secret_access_key="testing", region_name="us-east-1")

    def keys(self) -> list[str]:
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=self.bucket)
        return [o["Key"] for page in pages for o in page.get("Contents", [])]

    def stop(self) -> None:
        if self.proc is not None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def submitit_tasks(sweeper_pid: int) -> list:
    """The processes submitit's local executor runs the jobs of the sweep `sweeper_pid` in (its descendants, so
    not another test's)."""
    import psutil

    found = []
    for p in psutil.Process(sweeper_pid).children(recursive=True):
        try:
            if "submitit.core._submit" in " ".join(p.cmdline()):
                found.append(p)
        except psutil.Error:
            continue
    return found


def write_video(path: Path, frames: int = 64, size: tuple[int, int] = (640, 360), fps: float = 24.0) -> None:
    """A clip of two copies of the astronaut's face (her head and shoulders, 220 px) moving right across a grey
    frame, the left one 80 px and the right one 40 px over the clip, encoded as OpenCV's wheel writes MPEG-4."""
    import cv2
    import skimage.data

    side, (width, height) = 220, size
    face = cv2.resize(skimage.data.astronaut()[10:250, 105:345], (side, side), interpolation=cv2.INTER_AREA)
    face = np.ascontiguousarray(face[..., ::-1])  # BGR, as OpenCV writes
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    for k in range(frames):
        frame = np.full((height, width, 3), 90, np.uint8)
        dx = round(80 * k / max(1, frames - 1))
        frame[40:40 + side, 10 + dx:10 + side + dx] = face
        frame[100:100 + side, 330 + dx // 2:330 + side + dx // 2] = face
        out.write(frame)
    out.release()
