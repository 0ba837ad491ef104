"""Data sets by `data.name`, read into train / val / test splits."""

from __future__ import annotations

import sys
from pathlib import Path

from fer.data.split import Split
from fer.data.splits import Splits, arrange, cap

__all__ = ["Split", "Splits", "load_splits"]


def load_splits(cfg) -> Splits:
    """Read `data.path` with the reader of `data.name` (or generate the synthetic faces)."""
    if cfg.name == "synthetic":
        return synthetic_splits(cfg)
    from fer.data import readers

    path = Path(cfg.path).expanduser()
    if cfg.name == "fer2013":
        result = readers.read_fer2013(path, on_bad_row=cfg.on_bad_row)
    elif cfg.name == "hw3":
        result = readers.read_hw3(path, on_bad_row=cfg.on_bad_row)
    else:
        result = readers.read_folder(path, on_bad_row=cfg.on_bad_row)
    if result.skipped:
        lines = ", ".join(str(line) for line, _ in result.skipped[:10]) + (", …" if len(result.skipped) > 10 else "")
        print(f"fer: warning: data.on_bad_row=skip left out {len(result.skipped)} malformed rows of {path} "
              f"(lines {lines}); the run lists them in skipped_rows.csv", file=sys.stderr)
    splits = arrange(result.splits, cfg, str(path))
    splits.skipped = list(result.skipped)
    return splits


def synthetic_splits(cfg) -> Splits:
    """Three independently drawn splits; `limit` caps them like any other data set."""
    import numpy as np

    from fer.data.synthetic import generate

    rng = np.random.default_rng(cfg.seed)
    make = lambda n, k: cap(generate(n, seed=cfg.seed * 3 + k, noise=cfg.noise), cfg.limit, rng)  # noqa: E731
    return Splits(train=make(cfg.n_train, 0), val=make(cfg.n_val, 1), tests={"test": make(cfg.n_test, 2)})
