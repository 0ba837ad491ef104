"""Kaggle's fer2013 as csv, csv.gz or a prepared npz (`data=fer2013`), split by its Usage column.

Parsing the 290 MB csv takes seconds, so the parsed rows are cached beside it as `<name>.prepared.npz`.
"""

from __future__ import annotations

import os
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fer.console import say
from fer.data.readers.base import LABEL_RANGE, BadRow, Column, ReadResult, check_mode, parse_csv, parse_label, show
from fer.data.splits import Split
from fer.errors import DataError
from fer.labels import IMAGE_SIZE, NUM_CLASSES

USAGES = ("Training", "PublicTest", "PrivateTest")
_FER_KEYS = "pixels uint8 (N, 48, 48), emotion int (N,), optionally usage str (N,)"


def read_fer2013(path, on_bad_row: str = "error") -> ReadResult:
    """Kaggle fer2013 as csv, csv.gz or prepared npz, split by its Usage column (first-seen order)."""
    return read_rows(path, on_bad_row).result(Path(path), on_bad_row)


def read_rows(path, on_bad_row: str = "error") -> Rows:
    """The file's rows in file order, with their positions (what FER+'s row-aligned labels index).

    Parsing the 290 MB csv takes seconds, so the parsed rows are cached beside it as
    `<name>.prepared.npz` and reused while the cache is newer than the csv.
    """
    check_mode(on_bad_row)
    path = Path(path)
    if path.is_dir():
        inside = sorted(p.name for p in path.iterdir() if p.name.lower().endswith((".csv", ".gz", ".npz")))
        hint = f" (it holds {', '.join(inside[:5])}: pass one of them)" if inside else ""
        raise DataError(path, f"is a folder; expected fer2013.csv, .csv.gz or a prepared .npz{hint}")
    if path.exists() and not path.is_file():
        raise DataError(path, "not a regular file (a device or a pipe); expected the Kaggle fer2013.csv "
                        "(emotion,pixels,Usage), its .csv.gz or a prepared .npz")
    if not path.is_file():
        cache = _cache_path(path)
        hint = f"; {cache} exists and can be passed instead" if cache.is_file() else ""
        raise DataError(path, "no such file; expected the Kaggle fer2013.csv (emotion,pixels,Usage), "
                        f"its .csv.gz or a prepared .npz{hint}")
    if _is_npz(path):
        return _load_npz(path, on_bad_row)

    cache = _cache_path(path)
    if _cache_fresh(cache, path):
        try:
            prepared = _load_npz(cache, "skip", cached=True)
        except DataError as e:
            say(f"cannot use cache {cache} ({e.problem}); re-parsing {path}", err=True)
        else:
            say(f"using cached {cache} (delete it to re-parse {path})", err=True)
            return prepared

    start = time.perf_counter()
    columns = [Column("emotion", parse_label), Column("Usage", _parse_usage, required=False)]
    table = parse_csv(path, "pixels", columns, on_bad_row)
    seconds = time.perf_counter() - start
    n = len(table.rows)
    prepared = Rows(table.images, np.asarray(table.values["emotion"], dtype=np.int64),
                    np.array(table.values.get("usage") or ["Training"] * n, dtype=str), table.rows,
                    table.skipped, table.positions)
    note = _write_cache(cache, prepared)
    dropped = f" ({len(table.skipped):,} malformed rows skipped)" if table.skipped else ""
    say(f"parsed {n:,} rows of {path}{dropped} in {seconds:.1f} s; {note}", err=True)
    return prepared


def _parse_usage(token: bytes) -> str:
    text = token.strip().decode("utf-8", "replace")
    if text not in USAGES:
        raise BadRow(f"unknown Usage {show(token.strip())}; expected one of {', '.join(USAGES)}")
    return text


def _is_npz(path: Path) -> bool:
    if path.suffix.lower() == ".npz":
        return True
    with open(path, "rb") as f:
        return f.read(4) == b"PK\x03\x04"


def _cache_path(path: Path) -> Path:
    """fer2013.csv and fer2013.csv.gz → fer2013.prepared.npz beside them."""
    name = path.name.removesuffix(".gz").removesuffix(".GZ")
    return path.with_name(f"{Path(name).stem}.prepared.npz")


def _cache_fresh(cache: Path, source: Path) -> bool:
    try:
        return cache.stat().st_mtime_ns > source.stat().st_mtime_ns
    except OSError:
        return False


@dataclass
class Rows:
    """FER2013 rows in file order: what the cache and a prepared npz hold."""

    pixels: np.ndarray  # uint8 (N, 48, 48)
    emotion: np.ndarray  # int64 (N,)
    usage: np.ndarray  # str (N,)
    rows: np.ndarray  # int64 (N,), 1-based source line or row numbers
    skipped: list[tuple[int, str]]  # (line, problem) of rows dropped while parsing
    positions: np.ndarray  # int64 (N,), 0-based index among the file's data rows, skipped ones counted

    def arrays(self) -> dict[str, np.ndarray]:
        return {"pixels": self.pixels, "emotion": self.emotion, "usage": self.usage, "rows": self.rows,
                "positions": self.positions,
                "skipped_line": np.array([line for line, _ in self.skipped], dtype=np.int64),
                "skipped_reason": np.array([reason for _, reason in self.skipped], dtype=str)}

    def take(self, keep: np.ndarray) -> Rows:
        return Rows(self.pixels[keep], self.emotion[keep], self.usage[keep], self.rows[keep], self.skipped,
                    self.positions[keep])

    def result(self, source: Path, on_bad_row: str, targets: np.ndarray | None = None) -> ReadResult:
        """Group by Usage; rows the cached parse skipped are fatal again when `on_bad_row` is error.
        `targets` (N, classes), row-aligned, go with their rows into the splits."""
        if self.skipped and on_bad_row == "error":
            line, problem = self.skipped[0]
            raise DataError(source, problem, line=line)
        if not len(self.pixels):
            raise DataError(source, f"no usable rows ({len(self.skipped)} skipped); expected at least one")
        splits = {}
        for name in dict.fromkeys(self.usage.tolist()):
            index = np.flatnonzero(self.usage == name)
            splits[name] = Split(self.pixels[index], self.emotion[index], self.rows[index],
                                 targets=None if targets is None else targets[index])
        return ReadResult(splits, [(line, f"{source.name}: {problem}") for line, problem in self.skipped])


def _write_cache(cache: Path, prepared: Rows) -> str:
    """Write the cache atomically (a reader never sees half a file); say where, or why not."""
    tmp = cache.with_name(f".{cache.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            np.savez(f, **prepared.arrays())
        os.replace(tmp, cache)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        return f"not cached (cannot write {cache}: {e.strerror or e})"
    return f"cached as {cache}"


def _load_npz(path: Path, on_bad_row: str, cached: bool = False) -> Rows:
    """A prepared npz, checked; rows with a bad label or usage are raised or listed as skipped. Without a
    `positions` array a row's position is its index in the npz; a `cached` one must have it (older caches are
    parsed again)."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except FileNotFoundError:
        raise DataError(path, "no such file") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise DataError(path, f"not a readable .npz file ({e}); expected arrays {_FER_KEYS}") from None
    if "[Content_Types].xml" in arrays:  # the zip every Office Open XML file is
        raise DataError(path, "an Excel workbook (or another Office file); expected the Kaggle fer2013.csv, the "
                        "workbook saved as CSV UTF-8, or a prepared .npz")
    for key in ("pixels", "emotion"):
        if key not in arrays:
            raise DataError(path, f"missing array '{key}': expected {_FER_KEYS}; found "
                            f"{', '.join(arrays) or 'no arrays'}")
    pixels, emotion = arrays["pixels"], arrays["emotion"]
    if pixels.dtype != np.uint8 or pixels.ndim != 3 or pixels.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
        raise DataError(path, f"array 'pixels' is {pixels.dtype} {pixels.shape}; expected uint8 (N, 48, 48)")
    n = len(pixels)
    if cached and "positions" not in arrays:
        raise DataError(path, "written by an older fer (no row positions)")
    usage = arrays.get("usage", np.full(n, "Training"))
    rows = arrays.get("rows", np.arange(1, n + 1))
    positions = arrays.get("positions", np.arange(n))
    for key, array, kinds, kind_name in [("emotion", emotion, "iu", "int"), ("usage", usage, "US", "str"),
                                         ("rows", rows, "iu", "int"), ("positions", positions, "iu", "int")]:
        if array.dtype.kind not in kinds or array.shape != (n,):
            raise DataError(path, f"array '{key}' is {array.dtype} {array.shape}; "
                            f"expected {kind_name} ({n},) to match 'pixels'")
    usage, emotion, rows, positions = (usage.astype(str), emotion.astype(np.int64), rows.astype(np.int64),
                                       positions.astype(np.int64))
    skipped = list(zip(arrays.get("skipped_line", np.zeros(0, np.int64)).tolist(),
                       arrays.get("skipped_reason", np.zeros(0, str)).tolist(), strict=True))

    bad_label = (emotion < 0) | (emotion >= NUM_CLASSES)
    bad_usage = ~np.isin(usage, USAGES)
    keep = ~(bad_label | bad_usage)
    for i in np.flatnonzero(~keep):
        problem = (f"label {emotion[i]} out of range; expected {LABEL_RANGE}" if bad_label[i]
                   else f"unknown Usage {str(usage[i])!r}; expected one of {', '.join(USAGES)}")
        if on_bad_row == "error":
            raise DataError(path, f"row {rows[i]}: {problem}")
        skipped.append((int(rows[i]), f"row {rows[i]}: {problem}"))
    prepared = Rows(pixels, emotion, usage, rows, skipped, positions)
    if not keep.all():
        skipped.sort()
        prepared = prepared.take(keep)
    return prepared
