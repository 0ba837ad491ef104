"""A sweep and its runs as the MLflow UI shows them: a real `mlflow server` on loopback and Debian's headless
Chromium."""

from __future__ import annotations

import getpass
import re
from pathlib import Path

import pytest
from helpers import call_fer
from mlflow.tracking import MlflowClient
from playwright.sync_api import expect, sync_playwright

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
FAST = ["data.n_train=160", "data.n_val=64", "data.n_test=64", "trainer.max_epochs=1", "trainer.num_sanity_val_steps=0",
        "trainer.progress_bar=false", "explain=none", "tracking.system_metrics_every_s=1"]
WAIT = 30_000  # ms for the UI to render a page on a busy CI machine


@pytest.mark.slow
@pytest.mark.xdist_group("mlflow_server")  # the session's server, which the tracking faults kill and restart
@pytest.mark.skipif(not CHROMIUM.exists(), reason=f"no {CHROMIUM}: .ci/run installs Debian's chromium with apt-get")
def test_a_sweep_and_its_runs_in_the_ui_on_the_model_training_side(mlflow_server, tmp_path):
    """The parent lists its children; a child shows who ran it from where, its datasets, its logged model, its
    system metrics and its confusion matrix — on the link fer prints, in a browser that never chose a side."""
    url = mlflow_server.url
    proc = call_fer("fer.train", "-m", "experiment=cnn_vs_dnn", "tracking=server", f"tracking.uri={url}", *FAST,
                    cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    client = MlflowClient(url)
    exp = client.get_experiment_by_name("cnn_vs_dnn")
    runs = client.search_runs([exp.experiment_id])
    (parent,) = [r for r in runs if r.data.tags.get("fer.role") == "sweep"]
    children = {r.info.run_name: r.info.run_id for r in runs if r is not parent}
    assert len(children) == 2
    with sync_playwright() as pw:
        browser = pw.chromium.launch_persistent_context(
            tmp_path / "chromium-profile", executable_path=str(CHROMIUM), args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 1000})
        page = browser.new_page()
        printed = re.findall(rf"fer:   then ({re.escape(url)}/#/experiments/\S+)", proc.stdout)[-1]
        assert parent.info.run_id in printed
        page.goto(printed)
        expect(page.get_by_role("link", name="Model registry")).to_be_visible(timeout=WAIT)  # not the GenAI side
        expect(page.get_by_text("Child runs", exact=True)).to_be_visible(timeout=WAIT)
        for name in children:
            expect(page.get_by_role("link", name=name, exact=True)).to_be_visible(timeout=WAIT)
        page.screenshot(path=tmp_path / "parent_run.png", full_page=True)

        name, run_id = sorted(children.items())[0]
        # in the UI a link to another page drops the side the URL chose; fer prints each run's own link
        page.goto(next(u for u in re.findall(r"fer:   (\S+)", proc.stdout) if run_id in u))
        expect(page.get_by_role("link", name="Model registry")).to_be_visible(timeout=WAIT)
        for text in (getpass.getuser(), "train.py", "synthetic-train", "Logged models (1)"):
            expect(page.get_by_text(text).filter(visible=True).first).to_be_visible(timeout=WAIT)
        page.screenshot(path=tmp_path / "child_overview.png", full_page=True)
        page.get_by_role("tab", name="System metrics").click()
        expect(page.get_by_text("cpu_utilization_percentage", exact=True).filter(visible=True).first
               ).to_be_visible(timeout=WAIT)
        page.get_by_role("tab", name="Artifacts").click()
        page.get_by_text("confusion_matrix.png", exact=True).click()
        image = page.locator("img[alt='confusion_matrix.png']").first
        expect(image).to_be_visible(timeout=WAIT)
        page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=image.element_handle(),
                               timeout=WAIT)
        assert image.evaluate("img => img.naturalWidth") > 300
        page.screenshot(path=tmp_path / "child_confusion_matrix.png")
        browser.close()
