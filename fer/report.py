"""`python -m fer.report <sweep run id | experiment name>`: one self-contained HTML page answering the homework
(fer/sweeps/report.py), written beside you and logged into the sweep's parent run."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from fer.console import say
from fer.errors import FerError, guarded
from fer.sweeps.report import build
from fer.tracking.store import client_for, resolve_uri, sqlite_path


@guarded
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m fer.report",
                                     description="one self-contained HTML page answering the homework")
    parser.add_argument("target", help="a sweep's parent run id, or an MLflow experiment name (its latest sweep)")
    parser.add_argument("--uri", default="sqlite:///mlflow.db", help="tracking URI (default: ./mlflow.db)")
    parser.add_argument("--output", default="report.html", help="where to write the page")
    args = parser.parse_args(argv)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    uri = resolve_uri(args.uri)
    store = sqlite_path(uri)
    if store is not None and not store.exists():
        raise FerError(f"no MLflow store at {store}: run from where you trained, or pass --uri")
    client = client_for(uri)  # a server that does not answer fails now, naming the URI
    with tempfile.TemporaryDirectory() as tmp:
        page, parent = build(client, args.target, tmp)
    out = Path(args.output)
    out.write_text(page)
    if parent:
        client.log_artifact(parent, str(out))
    logged = f", logged to sweep run {parent}" if parent else ""
    say(f"wrote {out.resolve()} ({len(page) // 1024} KiB){logged}")


if __name__ == "__main__":
    sys.exit(main())
