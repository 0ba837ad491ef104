"""fer's own lines on the terminal, said in one place: each starts with `fer: `, notes, warnings and errors go to
stderr and results to stdout, and each is flushed at once, so that a sweep's workers and a process that is
killed next do not lose or interleave them."""

from __future__ import annotations

import sys


def say(text: str, *, err: bool = False, console=None) -> None:
    """`fer: <text>`; through `console` (a rich Console) while it draws a progress bar, so the bar stays whole."""
    if console is not None:
        console.print(f"fer: {text}", markup=False, soft_wrap=True)
    else:
        print(f"fer: {text}", file=sys.stderr if err else sys.stdout, flush=True)
