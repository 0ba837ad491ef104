"""The HW3 layout (`data=hw3`): train.csv (label,feature) and the unlabeled test.csv (id,feature) beside it."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fer.data.readers.base import Column, ReadResult, check_mode, parse_csv, parse_id, parse_label
from fer.data.splits import UNLABELED, Split
from fer.errors import DataError

_HW3_LAYOUT = "a folder holding train.csv (label,feature) and optionally test.csv (id,feature)"


def read_hw3(path, on_bad_row: str = "error") -> ReadResult:
    """The HW3 layout: train.csv (label,feature) and the unlabeled test.csv (id,feature) beside it."""
    check_mode(on_bad_row)
    path = Path(path)
    if path.is_dir():
        train, test = path / "train.csv", path / "test.csv"
        if not train.is_file():
            raise DataError(path, f"no train.csv in this folder; expected {_HW3_LAYOUT}")
    elif path.is_file():
        train, test = path, path.parent / "test.csv"
    else:
        raise DataError(path, f"no such file or folder; expected {_HW3_LAYOUT}")

    table = parse_csv(train, "feature", [Column("label", parse_label)], on_bad_row)
    splits = {"train": Split(table.images, np.asarray(table.values["label"], dtype=np.int64), table.rows)}
    skipped = [(line, f"{train.name}: {reason}") for line, reason in table.skipped]
    if test.is_file() and test != train:
        table = parse_csv(test, "feature", [Column("id", parse_id), Column("label", parse_label, False)],
                           on_bad_row)
        n = len(table.rows)
        labels = np.asarray(table.values.get("label") or [UNLABELED] * n, dtype=np.int64)
        ids = np.asarray(table.values["id"], dtype=np.int64)
        splits["test"] = Split(table.images, labels, table.rows, ids)
        skipped += [(line, f"{test.name}: {reason}") for line, reason in table.skipped]
    return ReadResult(splits, skipped)
