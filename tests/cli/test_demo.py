"""`fer.demo`: the page of a registered model on loopback, in Debian's headless Chromium through playwright: a photo
uploaded comes back with its face boxed, a label and the probability bars, a video with each face's summary and
the timeline, and nothing is fetched from outside."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import urllib.request
from pathlib import Path

import forked
import pytest
from helpers import astronaut, call_fer, write_video
from PIL import Image
from playwright.sync_api import expect, sync_playwright

from fer.labels import EMOTIONS

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
WAIT = 30_000  # ms

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("registered")]  # on the worker that trains the model


def start_demo(cwd: Path, *args: str) -> tuple[forked.Command, str]:
    """`python -m fer.demo model=models:/fer-cnn@champion port=0 <args>` and the URL it prints."""
    proc = forked.Command("fer.demo", "model=models:/fer-cnn@champion", "port=0", *args, cwd=cwd,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    line = proc.stdout.readline()
    if "http://" not in line:
        proc.kill()
        raise AssertionError(line + proc.communicate()[1])
    return proc, line.split(" at ")[1].split()[0]


@pytest.mark.skipif(not CHROMIUM.exists(), reason=f"no {CHROMIUM}: .ci/run installs Debian's chromium with apt-get")
def test_a_photo_dropped_on_the_demo_page_shows_its_face_label_and_bars(registered, tmp_path):
    cwd, client, _, runs, _ = registered
    Image.fromarray(astronaut()).save(tmp_path / "astronaut.jpg", quality=92)
    proc, url = start_demo(cwd)
    try:
        assert url.startswith("http://127.0.0.1:")
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            requested = []
            page.on("request", lambda r: requested.append(r.url))
            page.goto(url)
            about = page.locator("#about")
            expect(about).to_contain_text(runs[0].info.run_id, timeout=WAIT)
            test_acc = runs[0].data.metrics["test_acc"]
            expect(about).to_contain_text(f"test accuracy {100 * test_acc:.1f} %")
            expect(about).to_contain_text("models:/fer-cnn@champion")
            page.set_input_files("#file", str(tmp_path / "astronaut.jpg"))
            expect(page.locator(".face")).to_have_count(1, timeout=WAIT)
            label = page.locator(".face .label").inner_text()
            assert label.split()[0] == "#0" and label.split()[1] in EMOTIONS
            bars = page.locator(".face .bar")
            expect(bars).to_have_count(len(EMOTIONS))
            widths = [float(bars.nth(k).locator(".fill").evaluate("e => parseFloat(e.style.width)"))
                      for k in range(len(EMOTIONS))]
            assert sum(widths) == pytest.approx(100, abs=0.5) and max(widths) > 0
            best = page.locator(".face .bar.best")
            assert best.get_attribute("data-class") == label.split()[1]
            page.wait_for_function("() => document.querySelector('.face img').naturalWidth === 144", timeout=WAIT)
            expect(page.locator("#status")).to_have_text("1 face in astronaut.jpg")
            page.screenshot(path=tmp_path / "demo.png", full_page=True)

            write_video(tmp_path / "clip.mp4", frames=64)  # a short video: each face's summary and the timeline
            page.set_input_files("#file", str(tmp_path / "clip.mp4"))
            expect(page.locator(".face.video")).to_have_count(2, timeout=WAIT)
            expect(page.locator("#status")).to_have_text(re.compile(r"^2 faces followed in clip\.mp4 \(64 frames"))
            page.wait_for_function("() => document.querySelector('#timeline').naturalWidth > 600", timeout=WAIT)
            assert page.locator(".face.video .label").first.inner_text().startswith("#0 mostly ")
            page.screenshot(path=tmp_path / "demo_video.png", full_page=True)
            browser.close()
        assert requested and all(u.startswith(url) or u.startswith(("data:", "blob:")) for u in requested), requested
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0 and out.strip().endswith("fer: demo stopped") and "Traceback" not in err, err
    assert (tmp_path / "demo.png").stat().st_size > 10_000


def test_the_demo_answers_what_is_no_photo_with_a_reason(registered, tmp_path):
    cwd, *_ = registered
    proc, url = start_demo(cwd, "max_upload_mb=1")
    try:
        too_big = b"\0" * (16 << 20)  # sent whole before the answer is read, as urllib (and a browser's fetch) does
        for body, status, says in [(b"not a photo", 400, "not an image Pillow can read"),
                                   (too_big, 413, "16.0 MB, more than the demo takes (1 MB: max_upload_mb=)")]:
            request = urllib.request.Request(url + "analyze", data=body, method="POST")
            with pytest.raises(urllib.error.HTTPError) as answer:
                urllib.request.urlopen(request, timeout=60)
            assert answer.value.code == status and says in json.loads(answer.value.read())["error"]
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0 and "Traceback" not in err, err


def test_a_port_in_use_is_one_line(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = call_fer("fer.demo", "run_id=0123456789abcdef", f"port={port}", cwd=tmp_path)
    assert proc.returncode == 2 and proc.stderr.strip().splitlines() == [
        f"fer: error: port {port} on 127.0.0.1 is in use: give port=<another> (port=0 picks a free one)"]
