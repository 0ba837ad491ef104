"""The report: the homework's six questions answered for a sweep or an experiment, in HTML, Markdown or PDF, in
English or Traditional Chinese.

Everything is read back from MLflow (the runs' metrics, params and artifacts), so the page shows exactly what was
tracked; missing pieces are said. Each section opens with sentences that answer its question from the numbers,
then the evidence, the long parts folded (`<details>`). Runs that differ only by seed are one configuration
(mean ± std over n), and a difference between two configurations is called real or within noise by its 95 %
interval (fer/sweeps/comparison.py). Written by hand with `html.escape`: a template engine would be one more
dependency for six sections; the PDF is the HTML page printed by headless Chromium.
"""

from __future__ import annotations

import base64
import html
import json
import shutil
import subprocess
import tempfile
from collections import defaultdict
from pathlib import Path

from mlflow.tracking import MlflowClient

from fer.errors import FerError
from fer.models import MATCH_TARGETS
from fer.sweeps.comparison import Config, Job, children, configurations, difference, job_of
from fer.sweeps.report_words import CLASS_NAMES, WORDS
from fer.tracking import tags

NORM_ORDER = ("none", "unit", "symmetric", "standardize")  # tables read from no treatment to the most
AUG_ORDER = ("none", "keras", "crop_flip", "strong")


class Page:
    """The report as HTML and Markdown at once; figures embedded in the HTML, written beside the Markdown."""

    def __init__(self, client: MlflowClient, tmp: str, lang: str, figures: Path | None, open_details: bool):
        self.client, self.tmp, self.words = client, tmp, WORDS[lang]
        self.figures, self.open_details = figures, open_details
        self.html: list[str] = []
        self.md: list[str] = []
        self.fetched: dict[tuple[str, str], Path | None] = {}

    def say(self, key: str, **numbers) -> str:
        return self.words[key].format(**numbers)

    def h(self, level: int, text: str) -> None:
        self.html.append(f"<h{level}>{html.escape(text)}</h{level}>")
        self.md.append(f"{'#' * level} {text}\n")

    def p(self, text: str, cls: str = "") -> None:
        self.html.append(f'<p class="{cls}">{html.escape(text)}</p>' if cls else f"<p>{html.escape(text)}</p>")
        self.md.append(f"{text}\n")

    def answer(self, sentences: list[str]) -> None:
        """The section's opening paragraph: its answer."""
        text = " ".join(sentences) if self.words is WORDS["en"] else "".join(sentences)
        self.html.append(f'<p class="answer">{html.escape(text)}</p>')
        self.md.append(f"**{text}**\n")

    def missing(self, text: str) -> None:
        self.p(self.words["missing"] + text, "missing")

    def table(self, header: list[str], rows: list[list[object]]) -> None:
        head = "".join(f"<th>{html.escape(str(c))}</th>" for c in header)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
        self.html.append(f"<table><tr>{head}</tr>{body}</table>")
        self.md.append("\n".join(["| " + " | ".join(map(str, header)) + " |", "|" + "---|" * len(header),
                                  *("| " + " | ".join(map(str, r)) + " |" for r in rows)]) + "\n")

    def fold(self, summary: str) -> None:
        self.html.append(f"<details{' open' if self.open_details else ''}><summary>{html.escape(summary)}</summary>")
        self.md.append(f"*{summary}:*\n")

    def unfold(self) -> None:
        self.html.append("</details>")

    def pre(self, text: str) -> None:
        self.html.append(f"<pre>{html.escape(text)}</pre>")
        self.md.append(f"```\n{text.rstrip()}\n```\n")

    def artifact(self, run_id: str, path: str) -> Path | None:
        """A local copy of the run's artifact `path`, or None; each is listed and downloaded once (the confusion
        matrix and the model summaries are read by several sections)."""
        if (run_id, path) not in self.fetched:
            folder = str(Path(path).parent) if "/" in path else None
            names = {a.path for a in self.client.list_artifacts(run_id, folder)}
            self.fetched[run_id, path] = (Path(self.client.download_artifacts(run_id, path, tempfile.mkdtemp(
                dir=self.tmp))) if path in names else None)
        return self.fetched[run_id, path]

    def text(self, run_id: str, path: str) -> str | None:
        local = self.artifact(run_id, path)
        return local.read_text() if local else None

    def image(self, run_id: str, path: str, caption: str) -> bool:
        local = self.artifact(run_id, path)
        if local is None:
            self.missing(self.say("no_artifact", path=path, run=run_id))
            return False
        data = base64.b64encode(local.read_bytes()).decode()
        self.html.append(f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(path)}">'
                         f"<figcaption>{html.escape(caption)}</figcaption></figure>")
        if self.figures is not None:
            name = f"{run_id[:8]}-{path.replace('/', '-')}"
            self.figures.mkdir(parents=True, exist_ok=True)
            shutil.copy(local, self.figures / name)
            self.md.append(f"![{caption}]({self.figures.name}/{name})\n")
        return True

    def figures_under(self, run_id: str, folder: str, caption: str) -> list[str]:
        """The first of the run's figures under `folder` shown, the others folded; their paths."""
        paths = [a.path for a in self.client.list_artifacts(run_id, folder) if a.path.endswith(".png")]
        if not paths:
            self.missing(self.say("no_figures", folder=folder, run=run_id))
        for k, path in enumerate(paths):
            if k == 1:
                self.fold(self.say("more_figures", n=len(paths) - 1))
            self.image(run_id, path, f"{caption}: {path}")
        if len(paths) > 1:
            self.unfold()
        return paths


def find_jobs(client: MlflowClient, target: str) -> tuple[list[Job], str | None, str]:
    """The jobs of a sweep (a parent run id) or of an experiment (its latest sweep, else all its runs)."""
    exp = client.get_experiment_by_name(target)
    if exp is None:
        try:
            client.get_run(target)
        except Exception as e:
            raise FerError(f"{target!r} is neither a sweep run id nor an experiment name in {client.tracking_uri}") \
                from e
        return children(client, target), target, f"sweep {target}"
    sweeps = client.search_runs([exp.experiment_id], f"tags.`{tags.ROLE}` = '{tags.SWEEP_ROLE}'",
                                order_by=["start_time DESC"])
    if sweeps:
        parent = sweeps[0].info.run_id
        return children(client, parent), parent, f"experiment {target}, sweep {parent}"
    runs = client.search_runs([exp.experiment_id], "attributes.status = 'FINISHED'")
    return [job_of(client, r) for r in runs], None, f"experiment {target}"


def unlike(a: dict[str, str], b: dict[str, str]) -> int:
    """How many settings other than the model and the seed two runs differ in: a DNN is compared with the CNN
    trained like it (same normalization, augmentation, optimizer, …), not merely with one of the same size."""
    own = ("model.", "params_", "run_name", "seed")
    return sum(a.get(k) != b.get(k) for k in a.keys() | b.keys() if not k.startswith(own))


class Report:
    """The six sections, built from the runs of one sweep or experiment."""

    def __init__(self, client: MlflowClient, jobs: list[Job], page: Page, lang: str):
        self.client, self.page, self.lang = client, page, lang
        self.runs = {j.run_id: client.get_run(j.run_id) for j in jobs}
        self.jobs = jobs
        self.configs = configurations(jobs)
        self.faces = {c.label: min(self.test_faces(j) for j in c.jobs) for c in self.configs}
        self.cnns = [c for c in self.configs if self.param(c, "model.name") in MATCH_TARGETS]
        self.dnns = [c for c in self.configs if self.param(c, "model.name") not in MATCH_TARGETS]

    def param(self, config: Config, key: str) -> str | None:
        return self.runs[config.jobs[0].run_id].data.params.get(key)

    def test_faces(self, job: Job) -> int:
        """How many faces the run was tested on, from its confusion matrix (1 when it has none)."""
        text = self.page.text(job.run_id, "confusion_matrix.json")
        return max(1, sum(map(sum, json.loads(text)["counts"]))) if text else 1

    def accuracy(self, config: Config) -> str:
        if config.n > 1:
            return self.page.say("acc_many", acc=100 * config.test_acc, std=100 * config.std, n=config.n)
        return self.page.say("acc_one", acc=100 * config.test_acc)

    def noise(self, a: Config, b: Config) -> tuple[float, str]:
        """a − b in points and the phrase saying whether it is within noise."""
        diff, half = difference(a, b, min(self.faces[a.label], self.faces[b.label]))
        key = "within" if abs(diff) <= half else "real"
        return 100 * diff, self.page.say(key, lo=100 * (diff - half), hi=100 * (diff + half))

    def class_name(self, name: str) -> str:
        return CLASS_NAMES.get(self.lang, {}).get(name, name)

    def configs_table(self, configs: list[Config]) -> None:
        say = self.page.say
        self.page.table([say("col_config"), say("col_n"), say("col_test"), say("col_val"), say("col_params"),
                         say("col_sec")],
                        [[c.label, c.n, self.accuracy(c), f"{100 * c.best_val_acc:.1f} %",
                          f"{c.params:,}" if c.params else "?",
                          f"{c.sec_per_epoch:.2f}" if c.sec_per_epoch else "?"] for c in configs])

    def architecture(self, configs: list[Config]) -> None:
        """Each model's summary once, folded, naming the runs that share it."""
        by_model: dict[str, list[Config]] = defaultdict(list)
        for c in configs:
            by_model[self.param(c, "model.name") or "?"].append(c)
        for model, group in by_model.items():
            summary = self.page.text(group[0].jobs[0].run_id, "model_summary.txt")
            if summary:
                self.page.fold(self.page.say("architecture", model=model,
                                             runs=", ".join(j.name for c in group for j in c.jobs)))
                self.page.pre(summary)
                self.page.unfold()

    def curves(self, job: Job) -> None:
        self.page.fold(self.page.say("curves", name=job.name))
        self.page.image(job.run_id, "curves.png", self.page.say("curves", name=job.name))
        self.page.unfold()

    def best(self, configs: list[Config]) -> Config:
        """Chosen on validation, as a model is; its test accuracy is what the answer reports."""
        return max(configs, key=lambda c: c.best_val_acc)

    def cnn(self) -> Config | None:
        page = self.page
        page.h(2, page.say("h1"))
        if not self.cnns:
            page.missing(page.say("no_cnn", models=", ".join(MATCH_TARGETS)))
            return None
        c = self.best(self.cnns)
        top = max(c.jobs, key=lambda j: j.best_val_acc or 0.0)
        page.answer([page.say("cnn_answer", arch=self.param(c, "model.name"), params=c.params or 0, label=c.label,
                              acc=self.accuracy(c), epochs=top.epochs, val=100 * c.best_val_acc)])
        self.configs_table(self.cnns)
        self.architecture(self.cnns)
        self.curves(top)
        return c

    def dnn(self) -> None:
        page = self.page
        page.h(2, page.say("h2"))
        if not self.dnns:
            page.missing(page.say("no_dnn"))
            return
        d = self.best(self.dnns)  # the best DNN, against the CNN trained like it
        match = self.param(d, "model.match")
        peers = [c for c in self.cnns if self.param(c, "model.name") == match] or self.cnns
        if not peers:
            page.missing(page.say("no_peer", name=d.label))
            return
        own = self.runs[d.jobs[0].run_id].data.params
        c = min(peers, key=lambda c: (unlike(self.runs[c.jobs[0].run_id].data.params, own),
                                      abs((c.params or 0) - (d.params or 0))))
        gap, noise = self.noise(c, d)
        time = (page.say("time", ratio=d.sec_per_epoch / c.sec_per_epoch, d=d.sec_per_epoch, c=c.sec_per_epoch)
                if c.sec_per_epoch and d.sec_per_epoch else page.say("time_unknown"))
        page.answer([page.say("dnn_answer", d_params=d.params or 0, c_params=c.params or 0,
                              ratio=(d.params or 0) / max(1, c.params or 1), d_acc=self.accuracy(d), gap=abs(gap),
                              side=page.say("below" if gap >= 0 else "above"), c_acc=self.accuracy(c), noise=noise,
                              time=time)])
        self.configs_table([c, d])
        self.architecture([d])
        self.curves(max(d.jobs, key=lambda j: j.best_val_acc or 0.0))

    def norm_aug(self) -> None:
        page = self.page
        page.h(2, page.say("h3"))
        groups: dict[tuple, dict[tuple, Config]] = defaultdict(dict)
        for c in self.configs:
            groups[self.param(c, "model.name"), self.param(c, "act.name")][
                self.param(c, "norm.name"), self.param(c, "aug.name")] = c
        shown = 0
        for (model, act), cells in groups.items():
            norms = sorted({n for n, _ in cells}, key=lambda n: (NORM_ORDER.index(n) if n in NORM_ORDER else 9, n))
            augs = sorted({a for _, a in cells}, key=lambda a: (AUG_ORDER.index(a) if a in AUG_ORDER else 9, a))
            if len(norms) < 2 and len(augs) < 2:
                continue
            shown += 1
            effects = []
            for axis, values, key in (("norm", norms, "norm_effect"), ("aug", augs, "aug_effect")):
                if len(values) < 2:
                    continue
                old, new = values[0], values[-1]
                fixed = augs[0] if axis == "norm" else norms[0]
                a, b = ((cells.get((new, fixed)), cells.get((old, fixed))) if axis == "norm" else
                        (cells.get((fixed, new)), cells.get((fixed, old))))
                if a and b:
                    d, noise = self.noise(a, b)
                    effects.append(page.say(key, new=new, old=old, d=d, noise=noise))
            best = self.best(list(cells.values()))
            page.answer([page.say("normaug_answer", model=f"{model} + {act}", effects="; ".join(effects),
                                  norm=self.param(best, "norm.name"), aug=self.param(best, "aug.name"),
                                  acc=self.accuracy(best))])
            page.p(page.say("table_caption", model=f"{model} + {act}"))
            page.table(["norm \\ aug", *augs], [[n, *(self.accuracy(cells[n, a]) if (n, a) in cells else "—"
                                                      for a in augs)] for n in norms])
        if not shown:
            page.missing(page.say("no_ablation"))

    def opens(self, heading: str, job: Job | None) -> bool:
        """The section's heading, naming the run it shows; False (said) when there is no run to show."""
        self.page.h(2, self.page.say(heading) + (f" ({job.name})" if job else ""))
        if job is None:
            self.page.missing(self.page.say("no_run"))
        return job is not None

    def confusion(self, best: Job | None) -> None:
        page = self.page
        if not self.opens("h4", best):
            return
        text = page.text(best.run_id, "confusion_matrix.json")
        if text:
            doc = json.loads(text)
            names, rates = [self.class_name(c) for c in doc["classes"]], doc["normalized"]
            support = [sum(row) for row in doc["counts"]]
            seen = [k for k in range(len(names)) if support[k]]
            top = max(seen, key=lambda k: rates[k][k])
            low = min(seen, key=lambda k: rates[k][k])
            true, pred = max(((i, j) for i in seen for j in range(len(names)) if i != j),
                             key=lambda ij: rates[ij[0]][ij[1]])
            page.answer([page.say("confusion_answer", name=best.name, top=names[top], top_acc=100 * rates[top][top],
                                  low=names[low], low_acc=100 * rates[low][low], true=names[true], pred=names[pred],
                                  share=100 * rates[true][pred])])
        page.image(best.run_id, "confusion_matrix.png", f"{best.name}: test confusion matrix")
        any_vote = self.runs[best.run_id].data.metrics.get("test_any_vote_acc")
        if any_vote is not None:
            page.p(page.say("any_vote", acc=100 * best.test_acc, any=100 * any_vote))
        pairs = page.text(best.run_id, "confused_pairs.md")
        if pairs:
            lines = [row.strip().strip("|").split("|") for row in pairs.strip().splitlines() if row.startswith("|")]
            page.fold(page.say("pairs"))
            page.table([c.strip() for c in lines[0]], [[c.strip() for c in r] for r in lines[2:]])
            page.unfold()

    def saliency(self, job: Job | None) -> None:
        page = self.page
        if not self.opens("h5", job):
            return
        metrics = self.runs[job.run_id].data.metrics
        ratios = {k.removeprefix("saliency_mask_ratio_"): v for k, v in sorted(metrics.items())
                  if k.startswith("saliency_mask_ratio_")}
        methods = [a.path.removeprefix("saliency/").removesuffix(".png")
                   for a in self.client.list_artifacts(job.run_id, "saliency") if a.path.endswith(".png")]
        if ratios:
            page.answer([page.say("saliency_masks", name=job.name,
                                  ratios=", ".join(f"{m} {v:.2f}" for m, v in ratios.items()))])
        elif methods:
            page.answer([page.say("saliency_plain", k=len(methods), methods=", ".join(methods), name=job.name)])
        page.figures_under(job.run_id, "saliency", job.name)

    def filters(self, job: Job | None) -> None:
        page = self.page
        if not self.opens("h6", job):
            return
        listed = {folder: [a.path for a in self.client.list_artifacts(job.run_id, folder) if a.path.endswith(".png")]
                  for folder in ("filters", "layer_outputs")}
        if listed["filters"] or listed["layer_outputs"]:
            layers = ", ".join(Path(p).stem for p in listed["layer_outputs"]) or "—"
            page.answer([page.say("filters_answer", k=len(listed["filters"]), name=job.name,
                                  m=len(listed["layer_outputs"]), layers=layers)])
        page.figures_under(job.run_id, "filters", job.name)
        page.figures_under(job.run_id, "layer_outputs", job.name)


STYLE = ("body{font-family:system-ui,'Noto Sans CJK TC','Noto Sans TC','Noto Sans CJK JP',sans-serif;max-width:1000px;"
         "margin:2em auto;line-height:1.45}table{border-collapse:collapse;margin:.6em 0}td,th{border:1px solid #bbb;"
         "padding:3px 8px;font-size:13px}img{max-width:100%}figure{margin:.6em 0}.answer{font-size:1.08em;"
         "background:#eef4ff;padding:.6em .8em;border-left:4px solid #2d7ff9}.missing{color:#a00;font-weight:bold}"
         "pre{font-size:11px;background:#f6f6f6;padding:6px;overflow-x:auto}summary{cursor:pointer;color:#2255aa}"
         "@media print{h2{break-before:auto}figure,table{break-inside:avoid}}")
HTML_LANG = {"en": "en", "zh-TW": "zh-Hant-TW"}


def build(client: MlflowClient, target: str, tmp: str, lang: str = "en", figures: Path | None = None,
          open_details: bool = False) -> tuple[str, str, str | None]:
    """The report on `target` as (HTML, Markdown, the sweep's parent run id or None). With `figures`, the
    Markdown's figures are written there."""
    jobs, parent, title = find_jobs(client, target)
    if not jobs:  # a page of "missing" sections answers nothing
        raise FerError(f"{title} in {client.tracking_uri}: no runs to report on (a sweep's jobs, or an experiment's "
                       "finished runs); train some first: python -m fer.train -m experiment=hw3")
    page = Page(client, tmp, lang, figures, open_details)
    report = Report(client, jobs, page, lang)
    done = [j for j in jobs if j.test_acc is not None]
    page.h(1, page.say("title", title=title))
    page.p(page.say("intro", runs=len(jobs), configs=len(report.configs), done=len(done), uri=client.tracking_uri))
    data_names = {r.data.params.get("data.name") for r in report.runs.values()}
    page.p(" ".join(page.say(k) for k in ("fer2013", "ferplus") if k == "fer2013" and data_names != {"ferplus"}
                    or k == "ferplus" and "ferplus" in data_names))
    page.p(page.say("noise_note"))
    page.fold(page.say("configs_table"))
    report.configs_table(report.configs)
    page.unfold()
    page.fold(page.say("runs_table"))
    page.table([page.say("col_run"), "overrides", page.say("col_test"), page.say("col_val"), "epochs", "status"],
               [[j.name, j.overrides, f"{j.test_acc:.4f}" if j.test_acc is not None else "",
                 f"{j.best_val_acc:.4f}" if j.best_val_acc is not None else "", j.epochs, j.status] for j in jobs])
    page.unfold()
    report.cnn()
    report.dnn()
    report.norm_aug()
    best = max(done, key=lambda j: j.best_val_acc or 0.0) if done else None
    report.confusion(best)
    best_cnn = max((j for c in report.cnns for j in c.jobs), key=lambda j: j.best_val_acc or 0.0, default=best)
    report.saliency(best_cnn)
    report.filters(best_cnn)
    body = "\n".join(page.html)
    title_text = html.escape(page.say("title", title=title))
    document = (f"<!doctype html><html lang='{HTML_LANG[lang]}'><head><meta charset='utf-8'><title>{title_text}"
                f"</title><style>{STYLE}</style></head><body>\n{body}\n</body></html>\n")
    return document, "\n".join(page.md), parent


BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def chromium() -> str:
    """The headless browser that prints the PDF; FerError before anything is read when there is none."""
    found = next((path for name in BROWSERS if (path := shutil.which(name))), None)
    if found is None:
        raise FerError("report.format=pdf prints the page with headless Chromium, which is not installed: "
                       "apt-get install chromium (Debian/Ubuntu), or write report.format=html and print it from a "
                       "browser")
    return found


def print_pdf(browser: str, page: Path, pdf: Path) -> None:
    """`page` (HTML) printed to `pdf` by headless Chromium, without the browser's header and footer."""
    proc = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                           "--no-pdf-header-footer", f"--print-to-pdf={pdf}", page.resolve().as_uri()],
                          capture_output=True, text=True, timeout=300)
    if proc.returncode != 0 or not pdf.is_file() or pdf.stat().st_size == 0:
        why = (proc.stderr.strip().splitlines() or ["no output"])[-1][:200]
        raise FerError(f"Chromium ({browser}) did not print {pdf}: {why}")
