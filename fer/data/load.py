"""`data=`: the data sets by name, each read (or generated) into train / val / test splits."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fer.console import say
from fer.data.readers import ReadResult, read_fer2013, read_folder, read_hw3
from fer.data.readers.ferplus import clean_fer2013, read_ferplus
from fer.data.splits import Splits, arrange, cap
from fer.data.synthetic import generate
from fer.labels import CLASS_SETS
from fer.registry import Registry


@dataclass(frozen=True)
class Source:
    load: Callable[..., Splits]  # the data config → its splits
    needs_path: bool  # reads `data.path` (else generates its rows)
    classes: str | None = "fer2013"  # its class set (fer.labels.CLASS_SETS); None: chosen by `data.classes`


def synthetic_splits(cfg) -> Splits:
    """Three independently drawn splits in the class set `data.classes`; `limit` caps them like any other data."""
    rng = np.random.default_rng(cfg.seed)
    classes = CLASS_SETS.get(cfg.classes)
    make = lambda n, k: cap(generate(n, seed=cfg.seed * 3 + k, noise=cfg.noise, classes=classes),  # noqa: E731
                            cfg.limit, rng)
    return Splits(train=make(cfg.n_train, 0), val=make(cfg.n_val, 1), tests={"test": make(cfg.n_test, 2)},
                  classes=classes)


def fer2013_rows(path: Path, cfg) -> ReadResult:
    """Kaggle FER2013, less FER+'s not-a-face faces with `data.clean=ferplus`."""
    if cfg.clean == "ferplus":
        return clean_fer2013(path, Path(cfg.labels).expanduser(), cfg.on_bad_row)
    return read_fer2013(path, cfg.on_bad_row)


def ferplus_rows(path: Path, cfg) -> ReadResult:
    return read_ferplus(path, Path(cfg.labels).expanduser(), cfg.label_mode, cfg.on_bad_row)


def from_file(read: Callable[[Path, object], ReadResult]) -> Callable[..., Splits]:
    """Read `data.path` with `read(path, data config)` and arrange its splits by the validation policy."""

    def load(cfg) -> Splits:
        path = Path(cfg.path).expanduser()
        result = read(path, cfg)
        if result.skipped:
            more = ", …" if len(result.skipped) > 10 else ""
            lines = ", ".join(str(line) for line, _ in result.skipped[:10]) + more
            say(f"warning: data.on_bad_row=skip left out {len(result.skipped)} malformed rows of {path} "
                f"(lines {lines}); the run lists them in skipped_rows.csv", err=True)
        splits = arrange(result.splits, cfg, str(path), result.classes)
        splits.skipped, splits.dropped = list(result.skipped), list(result.dropped)
        return splits

    return load


DATASETS = Registry("data.name", {
    "synthetic": Source(synthetic_splits, needs_path=False, classes=None),
    "fer2013": Source(from_file(fer2013_rows), needs_path=True),
    "ferplus": Source(from_file(ferplus_rows), needs_path=True, classes="ferplus"),
    "hw3": Source(from_file(lambda path, cfg: read_hw3(path, cfg.on_bad_row)), needs_path=True),
    "folder": Source(from_file(lambda path, cfg: read_folder(path, cfg.on_bad_row)), needs_path=True),
})


def load_splits(cfg) -> Splits:
    """The splits of the data set `data.name` names."""
    return DATASETS.get(cfg.name).load(cfg)
