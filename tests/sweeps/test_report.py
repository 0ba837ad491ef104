"""`fer.report` on a small `experiment=hw3` sweep over two seeds: each section opens with an answer whose numbers
are the store's; seeds are grouped (mean ± std, n) and a difference inside its interval is called within noise;
each architecture is shown once; the PDF (headless Chromium) renders with its figures, and in Traditional Chinese
its headings have their glyphs; the Markdown links its figures."""

from __future__ import annotations

import html
import json
import math
import re
import shutil
import subprocess
import tempfile
from collections import defaultdict

import numpy as np
import pytest
from helpers import call_fer, store
from PIL import Image

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("hw3_seeds")]  # one worker trains the module's sweep
SWEEP = ["-m", "experiment=hw3", "aug=none", "seed=0,1", "data.n_train=160", "data.n_val=64", "data.n_test=64",
         "trainer.max_epochs=2", "trainer.progress_bar=false", "explain.filters.steps=10", "explain.filters.n=8",
         "explain.filters.layers=[conv:-1]", "explain.layer_outputs.layers=[conv:-1]", "explain.probe_ids=[0,1,2]",
         "explain.methods=[saliency,gradcam]", "tracking.log_model=false", "tracking.system_metrics=false"]
PDF_TOOLS = [tool for tool in ("chromium", "pdftoppm", "pdftotext", "pdfimages") if shutil.which(tool) is None]
if shutil.which("fc-list") is None or not subprocess.run(["fc-list", ":lang=zh-tw"], capture_output=True,
                                                         text=True).stdout.strip():
    PDF_TOOLS.append("font for Traditional Chinese")
needs_pdf_tools = pytest.mark.skipif(bool(PDF_TOOLS), reason=f"no {', '.join(PDF_TOOLS)}: .ci/run installs Debian's "
                                                             "chromium, poppler-utils and fonts-noto-cjk with apt-get")


@pytest.fixture(scope="module")
def hw3(tmp_path_factory, empty_store):
    cwd = tmp_path_factory.mktemp("hw3")
    shutil.copy(empty_store, cwd / "mlflow.db")
    proc = call_fer("fer.train", *SWEEP, cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    client = store(cwd)
    runs = client.search_runs([client.get_experiment_by_name("hw3").experiment_id])
    (parent,) = [r for r in runs if r.data.tags.get("fer.role") == "sweep"]
    return cwd, client, parent, [r for r in runs if r is not parent]


def answers(page: str) -> list[str]:
    return [html.unescape(a) for a in re.findall(r'<p class="answer">(.*?)</p>', page)]


def grouped(children) -> dict[tuple[str, str], list]:
    groups = defaultdict(list)
    for r in children:
        groups[r.data.params["model.name"], r.data.params["norm.name"]].append(r)
    return groups


def accuracy(runs) -> str:
    acc = [r.data.metrics["test_acc"] for r in runs]
    return f"{100 * np.mean(acc):.1f} ± {100 * np.std(acc, ddof=1):.1f} % (n={len(acc)})"


def best_val(client, run) -> float:
    return max(m.value for m in client.get_metric_history(run.info.run_id, "val_acc"))


def test_the_html_report_answers_from_the_store_and_is_honest_about_chance(hw3):
    cwd, client, parent, children = hw3
    proc = call_fer("fer.report", "hw3", cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "fer: rebuild it with: python -m fer.report hw3"
    assert {"report.html", "comparison_seeds.md"} <= {a.path for a in client.list_artifacts(parent.info.run_id)}
    seeds_table = open(client.download_artifacts(parent.info.run_id, "comparison_seeds.md", tempfile.mkdtemp())).read()
    assert len([line for line in seeds_table.splitlines() if line.startswith("| model=")]) == 4  # n=2 each
    page = (cwd / "report.html").read_text()
    for n in range(1, 7):
        assert f"<h2>{n}. " in page
    groups = grouped(children)
    val = {k: np.mean([best_val(client, r) for r in runs]) for k, runs in groups.items()}

    def chosen(model: str) -> list[tuple[str, str]]:  # the configurations validation picks (ties: any of them)
        top = max(v for k, v in val.items() if k[0] == model)
        return [k for k, v in val.items() if k[0] == model and v == top]

    first = answers(page)
    assert len(first) >= 5  # a section whose figures a tiny run lacks has none
    cnn_params, dnn_params = (int(next(r for r in children if r.data.params["model.name"] == model)
                                  .data.params["params_total"]) for model in ("cnn", "dnn"))
    assert f"{cnn_params:,} parameters" in first[0] and any(accuracy(groups[k]) in first[0] for k in chosen("cnn"))
    (dnn,) = [k for k in chosen("dnn") if accuracy(groups[k]) in first[1]]
    peer = ("cnn", dnn[1])  # the CNN trained like it: the same normalization
    assert f"{dnn_params:,} parameters" in first[1] and accuracy(groups[peer]) in first[1]

    # the interval of the CNN-DNN difference, from the store: 64 test faces a run, and the two seeds' spread
    def variance(runs):
        acc = np.array([r.data.metrics["test_acc"] for r in runs])
        return acc.mean() * (1 - acc.mean()) / (64 * len(acc)) + acc.var(ddof=1) / len(acc)

    diff = np.mean([r.data.metrics["test_acc"] for r in groups[peer]]) - np.mean(
        [r.data.metrics["test_acc"] for r in groups[dnn]])
    half = 1.959964 * math.sqrt(variance(groups[peer]) + variance(groups[dnn]))
    assert abs(diff) < half  # 64 faces: any difference of these runs is inside it
    assert (f"a difference within noise (95 % interval {100 * (diff - half):+.1f} to {100 * (diff + half):+.1f} "
            "points)") in first[1]

    assert page.count("Total params: ") == 2  # the cnn's summary once for its four runs, the DNN's once
    assert page.count(f"Total params: {cnn_params:,}") == 1 and page.count(f"Total params: {dnn_params:,}") == 1
    for runs in groups.values():
        assert accuracy(runs) in page  # each configuration as mean ± std over its n seeds

    four = next(a for a in first if " recognizes " in a)
    said = []
    for run in children:  # the run validation picked (ties: any of them) is the one the sentence quotes
        doc = json.loads(open(client.download_artifacts(run.info.run_id, "confusion_matrix.json",
                                                        tempfile.mkdtemp())).read())
        rates = np.array(doc["normalized"])
        top = max((k for k, row in enumerate(doc["counts"]) if sum(row)), key=lambda k: rates[k, k])
        said.append(f"recognizes {doc['classes'][top]} best ({100 * rates[top, top]:.1f} % of its test faces)")
    assert any(s in four for s in said), (four, said)

    (three,) = [a for a in first if a.startswith("For cnn + relu: ")]  # standardize against none, aug fixed
    effect = 100 * (np.mean([r.data.metrics["test_acc"] for r in groups["cnn", "standardize"]])
                    - np.mean([r.data.metrics["test_acc"] for r in groups["cnn", "none"]]))
    assert f"standardize normalization instead of none changes the test accuracy by {effect:+.1f} points" in three

    cnn_runs = [r for r in children if r.data.params["model.name"] == "cnn"]
    five = next(a for a in first if "attribution concentrates on the class-deciding regions" in a)
    ratios = [", ".join(f"{k.removeprefix('saliency_mask_ratio_')} {v:.2f}" for k, v in sorted(r.data.metrics.items())
                        if k.startswith("saliency_mask_ratio_")) for r in cnn_runs]
    assert any(f": {r} times their share" in five for r in ratios), (five, ratios)
    six = next(a for a in first if "by gradient ascent" in a)
    counts = {(len([a for a in client.list_artifacts(r.info.run_id, "filters") if a.path.endswith(".png")]),
               len([a for a in client.list_artifacts(r.info.run_id, "layer_outputs") if a.path.endswith(".png")]))
              for r in cnn_runs}
    assert any(six.startswith(f"{k} figures show") and f", and {m} show one face" in six for k, m in counts), six
    assert page.count("<details") >= 6 and page.count("<details open") == 0  # evidence folded until opened


@needs_pdf_tools
def test_pdf_pages_render_with_the_figures_and_in_chinese_with_every_glyph(hw3, tmp_path):
    cwd, client, parent, _ = hw3
    proc = call_fer("fer.report", "hw3", "report.format=pdf", f"--output={tmp_path / 'en.pdf'}", cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    pages = subprocess.run(["pdftoppm", "-r", "40", "-png", tmp_path / "en.pdf", tmp_path / "en"], check=True)
    assert pages.returncode == 0 and len(list(tmp_path.glob("en-*.png"))) >= 3
    text = subprocess.run(["pdftotext", tmp_path / "en.pdf", "-"], capture_output=True, text=True, check=True).stdout
    assert "test confusion matrix" in text and "saliency/saliency.png" in text and "saliency/gradcam.png" in text
    images = subprocess.run(["pdfimages", "-list", tmp_path / "en.pdf"], capture_output=True, text=True).stdout
    assert len(images.strip().splitlines()) - 2 >= 5  # curves, confusion matrix, saliency (2), filters, …
    assert "en.pdf" in {a.path for a in client.list_artifacts(parent.info.run_id)}

    proc = call_fer("fer.report", "hw3", "report.format=pdf", "report.lang=zh-TW", f"--output={tmp_path / 'zh.pdf'}",
                    cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    heading = "混淆矩陣"  # "4. 混淆矩陣": each character drawn from a font that has it, not as the same empty box
    layout = subprocess.run(["pdftotext", "-bbox", tmp_path / "zh.pdf", "-"], capture_output=True, text=True,
                            check=True).stdout
    page_of = 0
    for k, chunk in enumerate(layout.split("<page ")[1:], start=1):
        if f">{heading}</word>" in chunk:
            page_of, chunk_of = k, chunk
            break
    assert page_of, "the heading is not in the PDF's text"
    box = [float(v) for v in re.search(rf'xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">{heading}<',
                                       chunk_of).groups()]
    subprocess.run(["pdftoppm", "-r", "144", "-f", str(page_of), "-l", str(page_of), "-png", "-singlefile",
                    tmp_path / "zh.pdf", tmp_path / "zh"], check=True)
    rendered = np.asarray(Image.open(tmp_path / "zh.png").convert("L"), dtype=float)
    x0, y0, x1, y1 = (v * 2 for v in box)  # points → pixels at 144 dpi
    cells = [rendered[round(y0):round(y1), round(x0 + (x1 - x0) * i / 4):round(x0 + (x1 - x0) * (i + 1) / 4)]
             for i in range(4)]
    width = min(c.shape[1] for c in cells)
    cells = [c[:, :width] for c in cells]
    assert all((c < 128).mean() > 0.03 for c in cells)  # each character has ink
    assert min(np.abs(a - b).mean() for i, a in enumerate(cells) for b in cells[i + 1:]) > 10  # and its own shape


def test_markdown_links_the_figures_it_writes_beside_it(hw3, tmp_path):
    cwd, *_ = hw3
    out = tmp_path / "hw3.md"
    proc = call_fer("fer.report", "hw3", "report.format=md", f"--output={out}", cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    text = out.read_text()
    assert [line for line in text.splitlines() if line.startswith("## ")][:6] == [
        "## 1. The CNN: architecture, parameters and accuracy", "## 2. A DNN of the same size",
        "## 3. Normalization and augmentation", *(line for line in text.splitlines() if line.startswith("## 4.")),
        *(line for line in text.splitlines() if line.startswith("## 5.")),
        *(line for line in text.splitlines() if line.startswith("## 6."))]
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert len(links) >= 5 and all((tmp_path / link).is_file() for link in links)


def test_an_unknown_setting_or_value_is_one_line(hw3):
    cwd, *_ = hw3
    for args, says in [(["report.fromat=pdf"], "unknown setting 'report.fromat=pdf': fer.report takes "
                                                "report.format=, report.lang= after the sweep or experiment"),
                       (["report.lang=fr"], "config key 'report.lang': expected en or zh-TW, got 'fr'"),
                       ([f"--output={cwd / 'mlflow.db'}/report.html"], "config key '--output': expected a path "
                        f"through folders ({cwd / 'mlflow.db'} is a file), got '{cwd / 'mlflow.db'}/report.html'")]:
        proc = call_fer("fer.report", "hw3", *args, cwd=cwd)
        assert proc.returncode == 2 and proc.stderr.strip().splitlines() == [f"fer: error: {says}"]
