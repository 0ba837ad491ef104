"""The report page: one self-contained HTML page answering the homework for a sweep or an experiment.

Everything is read back from MLflow (the runs' metrics, params and artifacts), so the page shows exactly what
was tracked. Missing pieces are said in the page. Written by hand with `html.escape`: a template engine would
be one more dependency for six sections.
"""

from __future__ import annotations

import base64
import html
import tempfile
from collections import defaultdict
from pathlib import Path

from mlflow.tracking import MlflowClient

from fer.errors import FerError
from fer.models import MATCH_TARGETS
from fer.sweeps.comparison import Job, children, job_of, table_markdown
from fer.tracking import tags


class Page:
    def __init__(self, client: MlflowClient, tmp: str):
        self.client, self.tmp, self.parts = client, tmp, []

    def add(self, text: str) -> None:
        self.parts.append(text)

    def h(self, level: int, text: str) -> None:
        self.add(f"<h{level}>{html.escape(text)}</h{level}>")

    def p(self, text: str, cls: str = "") -> None:
        self.add(f'<p class="{cls}">{html.escape(text)}</p>' if cls else f"<p>{html.escape(text)}</p>")

    def missing(self, text: str) -> None:
        self.p("Missing: " + text, "missing")

    def table(self, header: list[str], rows: list[list[object]]) -> None:
        head = "".join(f"<th>{html.escape(str(c))}</th>" for c in header)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
        self.add(f"<table><tr>{head}</tr>{body}</table>")

    def artifact(self, run_id: str, path: str) -> Path | None:
        names = {a.path for a in self.client.list_artifacts(run_id, str(Path(path).parent) if "/" in path else None)}
        if path not in names:
            return None
        return Path(self.client.download_artifacts(run_id, path, tempfile.mkdtemp(dir=self.tmp)))

    def image(self, run_id: str, path: str, caption: str) -> bool:
        local = self.artifact(run_id, path)
        if local is None:
            self.missing(f"{path} of run {run_id}")
            return False
        data = base64.b64encode(local.read_bytes()).decode()
        self.add(f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(path)}">'
                 f"<figcaption>{html.escape(caption)}</figcaption></figure>")
        return True

    def text(self, run_id: str, path: str) -> str | None:
        local = self.artifact(run_id, path)
        return local.read_text() if local else None

    def images_under(self, run_id: str, folder: str, caption: str) -> None:
        paths = [a.path for a in self.client.list_artifacts(run_id, folder) if a.path.endswith(".png")]
        if not paths:
            self.missing(f"no {folder}/ figures in run {run_id} (trained with explain=none?)")
        for path in paths:
            self.image(run_id, path, f"{caption}: {path}")

    def markdown_table(self, md: str) -> None:
        lines = [line.strip().strip("|").split("|") for line in md.strip().splitlines() if line.startswith("|")]
        if len(lines) >= 2:
            self.table([c.strip() for c in lines[0]], [[c.strip() for c in r] for r in lines[2:]])


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
    """How many settings other than the model two runs differ in: a DNN is compared with the CNN trained
    like it (same normalization, augmentation, optimizer, …), not merely with one of the same size."""
    own = ("model.", "params_", "run_name")
    return sum(a.get(k) != b.get(k) for k in a.keys() | b.keys() if not k.startswith(own))


def scoring(data_names: set[str | None]) -> str:
    """What "accuracy" means on this page: FER2013's one label per face, or FER+'s majority of ten votes."""
    ferplus = ("FER+ runs (data=ferplus): test accuracy is against the majority of the ten annotators' votes, and "
               "test_any_vote_acc (in each run) is the share of predictions that at least one annotator voted for.")
    fer2013 = "Test accuracy is against the data's own label, one per face."
    if data_names == {"ferplus"}:
        return ferplus
    return f"{fer2013} {ferplus}" if "ferplus" in data_names else fer2013


def build(client: MlflowClient, target: str, tmp: str) -> tuple[str, str | None]:
    jobs, parent, title = find_jobs(client, target)
    if not jobs:  # a page of "missing" sections answers nothing
        raise FerError(f"{title} in {client.tracking_uri}: no runs to report on (a sweep's jobs, or an experiment's "
                       "finished runs); train some first: python -m fer.train -m experiment=hw3")
    runs = {j.run_id: client.get_run(j.run_id) for j in jobs}
    param = {j.run_id: runs[j.run_id].data.params for j in jobs}
    done = [j for j in jobs if j.test_acc is not None]
    cnns = [j for j in done if param[j.run_id].get("model.name") in MATCH_TARGETS]
    dnns = [j for j in done if param[j.run_id].get("model.name") not in MATCH_TARGETS]
    page = Page(client, tmp)
    page.h(1, f"fer report — {title}")
    page.p(f"{len(jobs)} runs, {len(done)} with test results; tracking store {client.tracking_uri}.")
    page.p(scoring({param[j.run_id].get("data.name") for j in jobs}))
    page.markdown_table(table_markdown(jobs))

    page.h(2, "1. The CNNs: architecture, parameters, training curves, accuracy")
    if not cnns:
        page.missing(f"no finished CNN run ({', '.join(MATCH_TARGETS)})")
    for j in cnns:
        page.h(3, f"{j.name} — test acc {j.test_acc:.4f}, best val acc {j.best_val_acc:.4f}, {j.params:,} parameters")
        summary = page.text(j.run_id, "model_summary.txt")
        page.add(f"<pre>{html.escape(summary)}</pre>" if summary else "")
        page.image(j.run_id, "curves.png", f"{j.name}: accuracy and loss per epoch")

    page.h(2, "2. A DNN of matched size")
    if not dnns:
        page.missing("no DNN run here: python -m fer.train -m experiment=cnn_vs_dnn")
    for d in dnns:
        match = param[d.run_id].get("model.match")
        peers = [c for c in cnns if param[c.run_id].get("model.name") == match] or cnns
        if not peers:
            page.missing(f"no CNN beside {d.name} to compare it with")
            continue
        c = min(peers, key=lambda c: (unlike(param[c.run_id], param[d.run_id]), abs(c.params - d.params)))
        rows = [[x.name, f"{x.params:,}", f"{x.test_acc:.4f}", f"{x.best_val_acc:.4f}",
                 f"{x.sec_per_epoch:.2f}" if x.sec_per_epoch else "?"] for x in (c, d)]
        page.table(["run", "parameters", "test acc", "best val acc", "s/epoch"], rows)
        ratio_t = f"{d.sec_per_epoch / c.sec_per_epoch:.2f}" if c.sec_per_epoch and d.sec_per_epoch else "?"
        page.p(f"DNN/CNN: accuracy ratio {d.test_acc / c.test_acc:.2f}, time-per-epoch ratio {ratio_t}, "
               f"parameter ratio {d.params / c.params:.3f}.")
        page.image(d.run_id, "curves.png", f"{d.name}: accuracy and loss per epoch")

    page.h(2, "3. Normalization and augmentation")
    groups = defaultdict(dict)
    for j in done:
        p = param[j.run_id]
        groups[p.get("model.name"), p.get("act.name")][p.get("norm.name"), p.get("aug.name")] = j
    tables = 0
    for (model, act), cells in groups.items():
        norms = sorted({n for n, _ in cells})
        augs = sorted({a for _, a in cells})
        if len(norms) < 2 and len(augs) < 2:
            continue
        tables += 1
        page.h(3, f"{model} + {act}: val / test accuracy (rows: norm, columns: aug)")
        page.table(["norm \\ aug", *augs], [[n, *(f"{cells[n, a].best_val_acc:.4f} / {cells[n, a].test_acc:.4f}"
                                                  if (n, a) in cells else "—" for a in augs)] for n in norms])
    if not tables:
        page.missing("no model was run with two normalizations or two augmentations: "
                     "python -m fer.train -m experiment=ablation")

    best = max(done, key=lambda j: j.best_val_acc or 0.0) if done else None
    page.h(2, "4. Confusion matrix of the best run" + (f" ({best.name})" if best else ""))
    if best is None:
        page.missing("no finished run")
    else:
        page.image(best.run_id, "confusion_matrix.png", f"{best.name}: test confusion matrix")
        any_vote = runs[best.run_id].data.metrics.get("test_any_vote_acc")
        if any_vote is not None:
            page.p(f"Against the votes: {best.test_acc:.1%} of the test faces get their majority label, and "
                   f"{any_vote:.1%} a class at least one annotator chose.")
        pairs = page.text(best.run_id, "confused_pairs.md")
        if pairs:
            page.markdown_table(pairs)
        else:
            page.missing("confused_pairs.md")

    best_cnn = max(cnns, key=lambda j: j.best_val_acc or 0.0) if cnns else best
    page.h(2, "5. Saliency maps" + (f" ({best_cnn.name})" if best_cnn else ""))
    if best_cnn is None:
        page.missing("no finished run")
    else:
        page.images_under(best_cnn.run_id, "saliency", best_cnn.name)
    page.h(2, "6. Filters (gradient ascent) and layer outputs" + (f" ({best_cnn.name})" if best_cnn else ""))
    if best_cnn is None:
        page.missing("no finished run")
    else:
        page.images_under(best_cnn.run_id, "filters", best_cnn.name)
        page.images_under(best_cnn.run_id, "layer_outputs", best_cnn.name)
    style = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto}table{border-collapse:collapse}"
             "td,th{border:1px solid #bbb;padding:3px 8px;font-size:13px}img{max-width:100%}"
             ".missing{color:#a00;font-weight:bold}pre{font-size:11px;background:#f6f6f6;padding:6px}")
    body = "\n".join(page.parts)
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>fer report — {html.escape(title)}</title>"
            f"<style>{style}</style></head><body>\n{body}\n</body></html>\n"), parent
