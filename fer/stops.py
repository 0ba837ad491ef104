"""Stops asked for by a signal and carried out where it is safe: between two items of a command that works through
many (photos, a video's frames, a spool's tracking calls), or at a training run's next batch (fer/runs/ending.py).
Torch-free, so the light commands (the spool replay) obey Ctrl-C the same way."""

from __future__ import annotations

import signal
from contextlib import contextmanager


class Stopped(KeyboardInterrupt):
    """A signal turned into an exception by whoever caught it (a sweep stops its jobs this way), with its name."""

    def __init__(self, cause: str):
        super().__init__(cause)
        self.cause = cause


class StopRequests:
    """A stop asked for by a signal handler, carried out where it is safe: at the next batch of a fit or test
    (`Interruption`), or at the end of a `deferred()` block (an upload in hand). An exception raised straight from
    a handler lands anywhere, also in a garbage collector's callback, where Python prints it and drops it. One per
    process (`STOPS`): a signal handler reaches the run no other way."""

    def __init__(self):
        self.cause: str | None = None
        self.in_lightning = False  # a fit or test runs: its next batch carries the stop out
        self.deferring = 0  # inside deferred(): its end carries the stop out

    def request(self, cause: str) -> None:
        self.cause = cause

    def carry_out(self) -> None:
        if self.cause:
            raise Stopped(self.cause)

    @contextmanager
    def deferred(self):
        """A requested stop waits for the end of this block, then raises `Stopped`."""
        self.deferring += 1
        try:
            yield
        finally:
            self.deferring -= 1
        if not self.deferring and not self.in_lightning:
            self.carry_out()


STOPS = StopRequests()


@contextmanager
def stops_between_items(stops: StopRequests = STOPS):
    """For a command that works through many items (photos): Ctrl-C or SIGTERM inside the block asks for a stop
    that the loop carries out between two items (`stops.carry_out()`), so no item is left half written; a second
    Ctrl-C stops at once."""
    def handler(signum, frame):
        if stops.cause and signum == signal.SIGINT:
            raise KeyboardInterrupt
        stops.request("Ctrl-C" if signum == signal.SIGINT else "SIGTERM")

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stops
    finally:
        stops.cause = None  # carried out, or never asked for
        for sig, before in previous.items():
            signal.signal(sig, before)
