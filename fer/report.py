"""`python -m fer.report <sweep run id | experiment name> [report.format=html|pdf|md] [report.lang=en|zh-TW]`: the
homework's six answers (fer/sweeps/report.py), written beside you and logged into the sweep's parent run; it ends
by printing the command that rebuilds it."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import tempfile
from pathlib import Path

from fer.console import say
from fer.errors import ConfigError, FerError, guarded, output_path
from fer.sweeps.report import build, chromium, print_pdf
from fer.sweeps.report_words import WORDS
from fer.tracking.store import client_for, resolve_uri, sqlite_path

SETTINGS = {"report.format": ("html", "pdf", "md"), "report.lang": tuple(WORDS)}


def settings(pairs: list[str]) -> dict[str, str]:
    """`report.format=…`, `report.lang=…` from the command line, each checked against its choices."""
    chosen = {key: choices[0] for key, choices in SETTINGS.items()}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or key not in SETTINGS:
            raise FerError(f"unknown setting {pair!r}: fer.report takes {', '.join(f'{k}=' for k in SETTINGS)} "
                           f"after the sweep or experiment")
        if value not in SETTINGS[key]:
            raise ConfigError(key, " or ".join(SETTINGS[key]), value)
        chosen[key] = value
    return chosen


@guarded
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m fer.report",
                                     description="the homework's six answers as one page (HTML, PDF or Markdown)")
    parser.add_argument("target", help="a sweep's parent run id, or an MLflow experiment name (its latest sweep)")
    parser.add_argument("settings", nargs="*", metavar="report.format=html|pdf|md report.lang=en|zh-TW")
    parser.add_argument("--uri", default="sqlite:///mlflow.db", help="tracking URI (default: ./mlflow.db)")
    parser.add_argument("--output", help="where to write it (default: report.<format>)")
    args = parser.parse_args(argv)
    chosen = settings(args.settings)
    kind, lang = chosen["report.format"], chosen["report.lang"]
    browser = chromium() if kind == "pdf" else None
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    uri = resolve_uri(args.uri)
    store = sqlite_path(uri)
    if store is not None and not store.exists():
        raise FerError(f"no MLflow store at {store}: run from where you trained, or pass --uri")
    client = client_for(uri)  # a server that does not answer fails now, naming the URI
    out = output_path(args.output or f"report.{kind}", "--output")
    figures = out.with_name(f"{out.stem}_files") if kind == "md" else None
    with tempfile.TemporaryDirectory() as tmp:
        page, markdown, parent = build(client, args.target, tmp, lang, figures, open_details=kind == "pdf")
        if kind == "pdf":
            html_file = Path(tmp) / "report.html"
            html_file.write_text(page)
            print_pdf(browser, html_file, out)
        else:
            out.write_text(markdown if kind == "md" else page)
    if parent:
        client.log_artifact(parent, str(out))
        if figures is not None and figures.is_dir():
            client.log_artifacts(parent, str(figures), figures.name)
    logged = f", logged to sweep run {parent}" if parent else ""
    say(f"wrote {out.resolve()} ({out.stat().st_size // 1024} KiB){logged}")
    again = ["python", "-m", "fer.report", args.target, *args.settings]
    again += [f"--uri={args.uri}"] if args.uri != parser.get_default("uri") else []
    again += [f"--output={args.output}"] if args.output else []
    say(f"rebuild it with: {shlex.join(again)}")


if __name__ == "__main__":
    sys.exit(main())
