"""`data=`: the data sets by name, each read (or generated) into train / val / test splits."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fer.data.readers import read_fer2013, read_folder, read_hw3
from fer.data.splits import Splits, arrange, cap
from fer.data.synthetic import generate
from fer.registry import Registry


@dataclass(frozen=True)
class Source:
    load: Callable[..., Splits]  # the data config → its splits
    needs_path: bool  # reads `data.path` (else generates its rows)


def synthetic_splits(cfg) -> Splits:
    """Three independently drawn splits; `limit` caps them like any other data set."""
    rng = np.random.default_rng(cfg.seed)
    make = lambda n, k: cap(generate(n, seed=cfg.seed * 3 + k, noise=cfg.noise), cfg.limit, rng)  # noqa: E731
    return Splits(train=make(cfg.n_train, 0), val=make(cfg.n_val, 1), tests={"test": make(cfg.n_test, 2)})


def from_file(reader) -> Callable[..., Splits]:
    """Read `data.path` with `reader` and arrange its splits by the validation policy."""

    def load(cfg) -> Splits:
        path = Path(cfg.path).expanduser()
        result = reader(path, on_bad_row=cfg.on_bad_row)
        if result.skipped:
            more = ", …" if len(result.skipped) > 10 else ""
            more = ", …" if len(result.skipped) > 10 else ""
            lines = ", ".join(str(line) for line, _ in result.skipped[:10]) + more
            print(f"fer: warning: data.on_bad_row=skip left out {len(result.skipped)} malformed rows of {path} "
                  f"(lines {lines}); the run lists them in skipped_rows.csv", file=sys.stderr)
        splits = arrange(result.splits, cfg, str(path))
        splits.skipped = list(result.skipped)
        return splits

    return load


DATASETS = Registry("data.name", {
    "synthetic": Source(synthetic_splits, needs_path=False),
    "fer2013": Source(from_file(read_fer2013), needs_path=True),
    "hw3": Source(from_file(read_hw3), needs_path=True),
    "folder": Source(from_file(read_folder), needs_path=True),
})


def load_splits(cfg) -> Splits:
    """The splits of the data set `data.name` names."""
    return DATASETS.get(cfg.name).load(cfg)
