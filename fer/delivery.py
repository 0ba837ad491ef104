"""`python -m fer.delivery replay <spool> [--uri URI]`: deliver the tracking calls a run kept in its spool folder
while the store did not answer (fer/tracking/delivering_client.py); light: no torch import."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fer.errors import EXIT_BAD_INPUT, guarded
from fer.tracking.delivering_client import replay


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m fer.delivery", description="deliver kept tracking calls")
    commands = parser.add_subparsers(dest="command", required=True)
    cmd = commands.add_parser("replay", help="deliver the tracking calls a run kept in a spool folder, in order")
    cmd.add_argument("spool", type=Path, help="the folder the run printed (mlflow-spool/...)")
    cmd.add_argument("--uri", help="deliver to this tracking URI instead of the one the calls were meant for")
    args = parser.parse_args(argv)
    sys.exit(0 if guarded(replay)(args.spool, args.uri) else EXIT_BAD_INPUT)


if __name__ == "__main__":
    main()
