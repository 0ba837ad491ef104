"""`fer.predict video=…`: a clip of two real faces in motion, through the CLI, gives a row per analysed frame per
face with one stable id per face, an annotated copy as long as the clip, a timeline and a summary, and the
probabilities of the registered MLflow Model; a file that is no usable video is one line; Ctrl-C keeps what
was analysed."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import time

import cv2
import forked
import mlflow
import numpy as np
import pytest
from helpers import call_fer, write_video
from PIL import Image

from fer.data.photos import find_faces
from fer.labels import EMOTIONS

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("registered")]  # on the worker that trains the model


def frames_of(path) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(path))
    frames = []
    while (read := capture.read())[0]:
        frames.append(read[1])
    capture.release()
    return frames


def read_rows(path) -> list[dict[str, str]]:
    with open(path) as f:
        return list(csv.DictReader(f))


def test_a_clip_of_two_moving_faces_is_followed_classified_and_drawn(registered, tmp_path):
    cwd, client, _, runs, _ = registered
    write_video(tmp_path / "clip.mp4", frames=64)
    proc = call_fer("fer.predict", "model=models:/fer-cnn@champion", f"video={tmp_path / 'clip.mp4'}", "every=2",
                    f"output={tmp_path / 'out'}", "log_to_run=true", cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    table = read_rows(tmp_path / "out" / "emotions.csv")
    assert sorted({int(r["frame"]) for r in table}) == list(range(0, 64, 2))  # every other frame analysed
    by_face = {face: [r for r in table if r["face"] == face] for face in {r["face"] for r in table}}
    assert sorted(by_face) == ["0", "1"] and all(len(rows) == 32 for rows in by_face.values())
    centers = {face: [int(r["x"]) + int(r["width"]) / 2 for r in rows] for face, rows in by_face.items()}
    assert max(centers["0"]) < 320 < min(centers["1"])  # each id stays with its face as both move right
    assert centers["0"][-1] - centers["0"][0] > 60 and 20 < centers["1"][-1] - centers["1"][0] < 60
    assert float(table[2]["seconds"]) == pytest.approx(2 / 24, abs=1e-3)

    clip, drawn = frames_of(tmp_path / "clip.mp4"), frames_of(tmp_path / "out" / "annotated.mp4")
    assert len(drawn) == len(clip) == 64 and drawn[0].shape == clip[0].shape == (360, 640, 3)
    assert np.abs(drawn[10].astype(int) - clip[10]).max() > 100  # the boxes and labels are drawn in
    assert Image.open(tmp_path / "out" / "timeline.png").size[0] >= 600
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())["faces"]
    assert sorted(summary) == ["0", "1"] and all(f["frames"] == 32 for f in summary.values())
    assert "fer: 64 frames (32 analysed)" in proc.stdout and "2 faces followed" in proc.stdout
    assert f"face #0: 32 frames, 0.0–2.6 s, mostly {summary['0']['dominant']}" in proc.stdout
    assert "face #1: 32 frames" in proc.stdout

    frame = 20  # the MLflow Model on the crops of the same decoded frame gives the csv's probabilities
    crops = find_faces(cv2.cvtColor(clip[frame], cv2.COLOR_BGR2RGB), "cascade", 0.2)
    mlflow.set_tracking_uri(client.tracking_uri)
    pyfunc = mlflow.pyfunc.load_model("models:/fer-cnn@champion").predict(
        np.stack([c.pixels for c in crops])[:, None].astype(np.float32))
    rows = sorted((r for r in table if int(r["frame"]) == frame), key=lambda r: int(r["x"]))
    assert [(int(r["x"]), int(r["y"])) for r in rows] == [c.box[:2] for c in crops]
    np.testing.assert_allclose([[float(r[e]) for e in EMOTIONS] for r in rows], pyfunc, atol=1e-5)
    logged = {a.path for a in client.list_artifacts(runs[0].info.run_id, "video")}
    assert logged == {f"video/{n}" for n in ("annotated.mp4", "emotions.csv", "summary.json", "timeline.png")}


def empty_avi(path):
    cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, (64, 48)).release()


def unknown_codec(path):
    write_video(path.with_suffix(".tmp.avi"), frames=3)  # mp4v in AVI, renamed to a made-up codec
    path.write_bytes(path.with_suffix(".tmp.avi").read_bytes().replace(b"FMP4", b"QQQQ").replace(b"mp4v", b"QQQQ"))


def cut_off_mp4(path):
    write_video(path.with_suffix(".whole.mp4"), frames=8)
    whole = path.with_suffix(".whole.mp4").read_bytes()
    path.write_bytes(whole[:len(whole) * 2 // 3])


@pytest.mark.parametrize(("name", "make", "says"), [
    ("notes.mp4", lambda p: p.write_text("not a video"), "not a video OpenCV's FFmpeg can read"),
    ("empty.avi", empty_avi, "the video has no frames"),
    ("odd.avi", unknown_codec, "a video in AVI, but its codec (QQQQ) is not one this OpenCV wheel's FFmpeg decodes"),
    ("cut.mp4", cut_off_mp4, "an MP4/MOV cut off before its index (moov) was complete"),
    ("face.jpg", lambda p: Image.new("RGB", (64, 64)).save(p), "a photo, not a video: for photos use images="),
    ("missing.mp4", lambda p: None, "no such file"),
])
def test_a_file_that_is_no_usable_video_is_one_line(tmp_path, name, make, says):
    make(tmp_path / name)
    proc = call_fer("fer.predict", "run_id=0123456789abcdef", f"video={tmp_path / name}", cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith(f"fer: error: video={tmp_path / name}: ") and says in line


def test_ctrl_c_keeps_the_rows_and_the_video_written_so_far(registered, tmp_path):
    """SIGINT to a real `fer.predict video=`: exit 130 and one line; the csv holds whole rows of the analysed
    frames and the annotated copy decodes with as many frames as the line says."""
    cwd, *_ = registered
    write_video(tmp_path / "long.mp4", frames=600)
    proc = forked.Command("fer.predict", "model=models:/fer-cnn@champion", f"video={tmp_path / 'long.mp4'}",
                          f"output={tmp_path / 'out'}", cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"})
    deadline = time.monotonic() + 120
    while not (tmp_path / "out" / "emotions.csv").exists() or len(read_rows(tmp_path / "out" / "emotions.csv")) < 10:
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "Traceback" not in err, err
    table = read_rows(tmp_path / "out" / "emotions.csv")
    frames = sorted({int(r["frame"]) for r in table})
    assert 5 <= len(frames) < 600 and all(r["Neutral"] for r in table)
    written = len(frames_of(tmp_path / "out" / "annotated.mp4"))
    assert err.strip().splitlines()[-1] == (
        f"fer: stopped by Ctrl-C: the {len(frames)} frames analysed are in {tmp_path / 'out' / 'emotions.csv'} and "
        f"the {written} written in {tmp_path / 'out' / 'annotated.mp4'}")
    assert not (tmp_path / "out" / "summary.json").exists()
