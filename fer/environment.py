"""An environment variable fer sets (or lets a library set) for a while and puts back as it was, absent included:
Hydra's full errors while a command composes, cv2's loader path while it is imported, MLflow's retries while a store
is known to be away."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def restored(var: str, value: str | None = None) -> Iterator[None]:
    """`var` set to `value` meanwhile (left to whoever sets it when None), then as it was before."""
    before = os.environ.get(var)
    if value is not None:
        os.environ[var] = value
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(var, None)
        else:
            os.environ[var] = before
