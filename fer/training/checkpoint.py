"""Reading a checkpoint: its tensors only, never code (`weights_only=True`), and one line when it is not one fer
wrote — torch's own error would advise `weights_only=False`, exactly the wrong advice for a tampered file."""

from __future__ import annotations

import pickle
import warnings

import torch

from fer.errors import FerError


def load_checkpoint(path: str, what: str) -> dict:
    """A checkpoint's tensors, loaded without running any code it holds; a FerError if it is not one fer wrote."""
    try:
        with warnings.catch_warnings():  # torch's note on a foreign file's pickle protocol says nothing useful
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        problem = "holds objects other than tensors, so it is not a checkpoint fer wrote; nothing in it was run"
    except (RuntimeError, EOFError, OSError, ValueError) as e:
        problem = f"is not a readable checkpoint ({str(e).splitlines()[0][:120]})"
    raise FerError(f"{what} {problem}: replace it with a trusted copy, or train the run again")
