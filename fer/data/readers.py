"""Readers for the FER2013 releases: Kaggle csv (.csv, .csv.gz, prepared .npz), HW3 csv, image folders.

Every reader returns a `ReadResult` of source split name → `Split`, and checks its input fully
before anything trains: a bad file fails with one `DataError` line naming the file, the line (or
key) and what was expected. With `on_bad_row="skip"` the readers drop malformed rows (undecodable
images) instead and list them in `ReadResult.skipped` so a run can report what it left out.
"""

from __future__ import annotations

import csv
import gzip
import os
import re
import sys
import time
import warnings
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fer.data.split import UNLABELED, Split
from fer.errors import DataError
from fer.labels import EMOTIONS, IMAGE_SIZE, NUM_CLASSES

PIXELS = IMAGE_SIZE * IMAGE_SIZE
USAGES = ("Training", "PublicTest", "PrivateTest")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp")
CLASS_FOLDERS = {**{e.lower(): i for i, e in enumerate(EMOTIONS)}, **{str(i): i for i in range(NUM_CLASSES)}}

_INT = re.compile(rb"[+-]?[0-9]+")
_LABEL_RANGE = f"0–{NUM_CLASSES - 1} ({', '.join(f'{i} {e}' for i, e in enumerate(EMOTIONS))})"
_FER_KEYS = "pixels uint8 (N, 48, 48), emotion int (N,), optionally usage str (N,)"
_HW3_LAYOUT = "a folder holding train.csv (label,feature) and optionally test.csv (id,feature)"
_FOLDER_LAYOUT = (f"train/<class>/*.png|jpg|jpeg|bmp and optionally test/<class>/*, class folders named "
                  f"{', '.join(e.lower() for e in EMOTIONS)} or 0–{NUM_CLASSES - 1}")


@dataclass(frozen=True)
class ReadResult:
    """What a reader found: the splits by source name, and the (line, reason) of rows it skipped."""

    splits: dict[str, Split]
    skipped: list[tuple[int, str]] = field(default_factory=list)


class _BadRow(Exception):
    """One malformed row; the caller decides whether it is fatal (`on_bad_row`)."""


@dataclass
class _Column:
    name: str  # as written in the header; matched case-insensitively
    parse: Callable[[bytes], object]
    required: bool = True


@dataclass
class _Table:
    images: np.ndarray  # uint8 (N, 48, 48)
    values: dict[str, list]  # parsed non-pixel columns by lower-case name
    rows: np.ndarray  # 1-based line numbers
    skipped: list[tuple[int, str]]


# ---------------------------------------------------------------------------------------------------
# Public readers


def read_fer2013(path, on_bad_row: str = "error") -> ReadResult:
    """Kaggle fer2013 as csv, csv.gz or prepared npz, split by its Usage column (first-seen order).

    Parsing the 290 MB csv takes seconds, so the parsed rows are cached beside it as
    `<name>.prepared.npz` and reused while the cache is newer than the csv.
    """
    _check_mode(on_bad_row)
    path = Path(path)
    if path.is_dir():
        inside = sorted(p.name for p in path.iterdir() if p.name.lower().endswith((".csv", ".gz", ".npz")))
        hint = f" (it holds {', '.join(inside[:5])}: pass one of them)" if inside else ""
        raise DataError(path, f"is a folder; expected fer2013.csv, .csv.gz or a prepared .npz{hint}")
    if not path.is_file():
        cache = _cache_path(path)
        hint = f"; {cache} exists and can be passed instead" if cache.is_file() else ""
        raise DataError(path, "no such file; expected the Kaggle fer2013.csv (emotion,pixels,Usage), "
                        f"its .csv.gz or a prepared .npz{hint}")
    if _is_npz(path):
        return _load_npz(path, on_bad_row).result(path, on_bad_row)

    cache = _cache_path(path)
    if _cache_fresh(cache, path):
        try:
            prepared = _load_npz(cache, "skip")
        except DataError as e:
            print(f"fer: cannot use cache {cache} ({e.problem}); re-parsing {path}", file=sys.stderr)
        else:
            print(f"fer: using cached {cache} (delete it to re-parse {path})", file=sys.stderr)
            return prepared.result(path, on_bad_row)

    start = time.perf_counter()
    columns = [_Column("emotion", _parse_label), _Column("Usage", _parse_usage, required=False)]
    table = _parse_csv(path, "pixels", columns, on_bad_row)
    seconds = time.perf_counter() - start
    n = len(table.rows)
    prepared = _Prepared(table.images, np.asarray(table.values["emotion"], dtype=np.int64),
                         np.array(table.values.get("usage") or ["Training"] * n, dtype=str), table.rows,
                         table.skipped)
    note = _write_cache(cache, prepared)
    dropped = f" ({len(table.skipped):,} malformed rows skipped)" if table.skipped else ""
    print(f"fer: parsed {n:,} rows of {path}{dropped} in {seconds:.1f} s; {note}", file=sys.stderr)
    return prepared.result(path, on_bad_row)


def read_hw3(path, on_bad_row: str = "error") -> ReadResult:
    """The HW3 layout: train.csv (label,feature) and the unlabeled test.csv (id,feature) beside it."""
    _check_mode(on_bad_row)
    path = Path(path)
    if path.is_dir():
        train, test = path / "train.csv", path / "test.csv"
        if not train.is_file():
            raise DataError(path, f"no train.csv in this folder; expected {_HW3_LAYOUT}")
    elif path.is_file():
        train, test = path, path.parent / "test.csv"
    else:
        raise DataError(path, f"no such file or folder; expected {_HW3_LAYOUT}")

    table = _parse_csv(train, "feature", [_Column("label", _parse_label)], on_bad_row)
    splits = {"train": Split(table.images, np.asarray(table.values["label"], dtype=np.int64), table.rows)}
    skipped = [(line, f"{train.name}: {reason}") for line, reason in table.skipped]
    if test.is_file() and test != train:
        table = _parse_csv(test, "feature", [_Column("id", _parse_id), _Column("label", _parse_label, False)],
                           on_bad_row)
        n = len(table.rows)
        labels = np.asarray(table.values.get("label") or [UNLABELED] * n, dtype=np.int64)
        ids = np.asarray(table.values["id"], dtype=np.int64)
        splits["test"] = Split(table.images, labels, table.rows, ids)
        skipped += [(line, f"{test.name}: {reason}") for line, reason in table.skipped]
    return ReadResult(splits, skipped)


def read_folder(root, on_bad_row: str = "error") -> ReadResult:
    """The image-folder release: root/train/<class>/* and optionally root/test/<class>/*.

    Files are read in (class, path) order so runs are reproducible whatever the file system lists;
    `ids` are the paths relative to `root`, and an image's row is its position in that order. Images
    that are not 48×48 are resized (one line says how many); with `on_bad_row="skip"` one that does not
    decode is listed in `skipped` instead of stopping the read.
    """
    _check_mode(on_bad_row)
    root = Path(root)
    if not root.is_dir():
        problem = "is a file" if root.exists() else "no such folder"
        raise DataError(root, f"{problem}; expected a folder holding {_FOLDER_LAYOUT}")
    subdirs = {p.name.lower(): p for p in sorted(root.iterdir()) if p.is_dir()}
    if "train" not in subdirs:
        raise DataError(root, f"no train folder; expected {_FOLDER_LAYOUT}")
    splits, skipped, resized = {}, [], []
    for name in ("train", "test"):
        if name in subdirs:
            splits[name] = _read_image_split(root, subdirs[name], on_bad_row, skipped, resized)
    if resized:
        first, (w, h) = resized[0]
        print(f"fer: resized {len(resized)} images of {root} to 48×48 (first: {first}, {w}×{h})", file=sys.stderr)
    return ReadResult(splits, skipped)


# ---------------------------------------------------------------------------------------------------
# csv parsing


def _check_mode(on_bad_row: str) -> None:
    if on_bad_row not in ("error", "skip"):
        raise ValueError(f"on_bad_row must be 'error' or 'skip', got {on_bad_row!r}")


def _show(token: bytes, limit: int = 20) -> str:
    """A token as it can be quoted in a one-line message."""
    text = token.decode("utf-8", "replace")
    return repr(text if len(text) <= limit else text[:limit] + "…")


def _parse_label(token: bytes) -> int:
    token = token.strip()
    if not _INT.fullmatch(token):
        raise _BadRow(f"label {_show(token)} is not an integer; expected {_LABEL_RANGE}")
    value = int(token)
    if not 0 <= value < NUM_CLASSES:
        raise _BadRow(f"label {value} out of range; expected {_LABEL_RANGE}")
    return value


def _parse_usage(token: bytes) -> str:
    text = token.strip().decode("utf-8", "replace")
    if text not in USAGES:
        raise _BadRow(f"unknown Usage {_show(token.strip())}; expected one of {', '.join(USAGES)}")
    return text


def _parse_id(token: bytes) -> int:
    token = token.strip()
    if not _INT.fullmatch(token):
        raise _BadRow(f"id {_show(token)} is not an integer; expected an integer id")
    return int(token)


def _parse_pixels_slowly(token: bytes) -> np.ndarray:
    """Row-by-row validation, run only on rows the bulk parse rejected, to say what is wrong."""
    values = []
    for position, part in enumerate(token.split(), 1):
        if not _INT.fullmatch(part):
            raise _BadRow(f"non-numeric pixel {_show(part)} at position {position}; expected integers 0–255")
        value = int(part)
        if not 0 <= value <= 255:
            raise _BadRow(f"pixel value {value} at position {position} out of range; expected 0–255")
        values.append(value)
    if len(values) != PIXELS:
        raise _BadRow(f"{len(values)} pixels, expected {PIXELS} (48×48)")
    return np.array(values, dtype=np.uint8)


def _read_bytes(path: Path, expected: str) -> bytes:
    """The file's bytes, gunzipped when it is gzip (recognised by content, not name); `expected` says what
    an empty file should have held."""
    if path.is_dir():
        raise DataError(path, "is a folder; expected a csv file")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DataError(path, "no such file") from None
    except OSError as e:
        raise DataError(path, f"cannot read: {e.strerror or e}") from None
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as e:
            raise DataError(path, f"not a readable gzip file ({e}); expected a gzip-compressed csv") from None
    data = data.removeprefix(b"\xef\xbb\xbf")
    if not data or data.isspace():
        raise DataError(path, f"empty file; expected {expected}")
    return data


def _parse_csv(path: Path, pixel_column: str, columns: list[_Column], on_bad_row: str) -> _Table:
    """Parse a header + rows csv with a pixel column, fast in bulk and exact about bad rows.

    Pixel strings made only of digits and spaces go through numpy's C parser; any other row is
    re-checked token by token so the error names the line and the offending token.
    """
    wanted = [columns[0], _Column(pixel_column, _parse_pixels_slowly), *columns[1:]]  # the files' own order
    expected = ",".join(c.name if c.required else f"[{c.name}]" for c in wanted)
    lines = _read_bytes(path, f"a header {expected} and one row per image").splitlines()
    header_text = lines[0].decode("utf-8", "replace").strip()
    header = [name.strip().lower() for name in next(csv.reader([header_text]), [])]
    index = {}
    for column in wanted:
        key = column.name.lower()
        if key in header:
            index[key] = header.index(key)
        elif column.required:
            raise DataError(path, f"missing column '{column.name}': expected columns {expected}, "
                            f"found header {_show(lines[0], 80)}", line=1)
    pixel_at = index.pop(pixel_column.lower())
    parse_of = {c.name.lower(): c.parse for c in columns}
    parsers = [(key, at, parse_of[key]) for key, at in index.items()]
    n_fields = max([pixel_at, *index.values()]) + 1

    images = np.empty((len(lines), PIXELS), dtype=np.uint8)
    values: dict[str, list] = {key: [] for key in index}
    rows: list[int] = []
    skipped: list[tuple[int, str]] = []
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)  # older numpy warns instead of raising on junk
        for line_no, line in enumerate(lines[1:], 2):
            if not line or line.isspace():
                continue
            try:
                if b'"' in line:
                    fields = [f.encode("utf-8") for f in next(csv.reader([line.decode("utf-8", "replace")]))]
                else:
                    fields = line.split(b",")
                if len(fields) < n_fields:
                    raise _BadRow(f"only {len(fields)} of {len(header)} fields; expected one per header column "
                                  f"({header_text[:80]})")
                parsed = [(key, parse(fields[at])) for key, at, parse in parsers]
                images[len(rows)] = _parse_pixels(fields[pixel_at])
            except _BadRow as e:
                if on_bad_row == "error":
                    raise DataError(path, str(e), line=line_no) from None
                skipped.append((line_no, str(e)))
                continue
            for key, value in parsed:
                values[key].append(value)
            rows.append(line_no)
    if not rows:
        if skipped:
            line_no, reason = skipped[0]
            raise DataError(path, f"all {len(skipped)} data rows are malformed; the first, line {line_no}: "
                            f"{reason}")
        raise DataError(path, "no data rows after the header; expected one row per image")
    n = len(rows)
    images = images[:n].reshape(n, IMAGE_SIZE, IMAGE_SIZE)
    return _Table(images, values, np.array(rows, dtype=np.int64), skipped)


def _parse_pixels(token: bytes) -> np.ndarray:
    if not token.translate(None, b"0123456789 "):
        try:
            values = np.fromstring(token, dtype=np.int64, sep=" ")
        except (ValueError, DeprecationWarning):
            values = None
        if values is not None and values.size == PIXELS and values.max() <= 255:
            return values
    return _parse_pixels_slowly(token)


# ---------------------------------------------------------------------------------------------------
# npz and the csv cache


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
class _Prepared:
    """FER2013 rows in file order: what the cache and a prepared npz hold."""

    pixels: np.ndarray  # uint8 (N, 48, 48)
    emotion: np.ndarray  # int64 (N,)
    usage: np.ndarray  # str (N,)
    rows: np.ndarray  # int64 (N,), 1-based source line or row numbers
    skipped: list[tuple[int, str]]  # (line, problem) of rows dropped while parsing

    def arrays(self) -> dict[str, np.ndarray]:
        return {"pixels": self.pixels, "emotion": self.emotion, "usage": self.usage, "rows": self.rows,
                "skipped_line": np.array([line for line, _ in self.skipped], dtype=np.int64),
                "skipped_reason": np.array([reason for _, reason in self.skipped], dtype=str)}

    def result(self, source: Path, on_bad_row: str) -> ReadResult:
        """Group by Usage; rows the cached parse skipped are fatal again when `on_bad_row` is error."""
        if self.skipped and on_bad_row == "error":
            line, problem = self.skipped[0]
            raise DataError(source, problem, line=line)
        if not len(self.pixels):
            raise DataError(source, f"no usable rows ({len(self.skipped)} skipped); expected at least one")
        splits = {}
        for name in dict.fromkeys(self.usage.tolist()):
            index = np.flatnonzero(self.usage == name)
            splits[name] = Split(self.pixels[index], self.emotion[index], self.rows[index])
        return ReadResult(splits, [(line, f"{source.name}: {problem}") for line, problem in self.skipped])


def _write_cache(cache: Path, prepared: _Prepared) -> str:
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


def _load_npz(path: Path, on_bad_row: str) -> _Prepared:
    """A prepared npz, checked; rows with a bad label or usage are raised or listed as skipped."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except FileNotFoundError:
        raise DataError(path, "no such file") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise DataError(path, f"not a readable .npz file ({e}); expected arrays {_FER_KEYS}") from None
    for key in ("pixels", "emotion"):
        if key not in arrays:
            raise DataError(path, f"missing array '{key}': expected {_FER_KEYS}; found "
                            f"{', '.join(arrays) or 'no arrays'}")
    pixels, emotion = arrays["pixels"], arrays["emotion"]
    if pixels.dtype != np.uint8 or pixels.ndim != 3 or pixels.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
        raise DataError(path, f"array 'pixels' is {pixels.dtype} {pixels.shape}; expected uint8 (N, 48, 48)")
    n = len(pixels)
    usage = arrays.get("usage", np.full(n, "Training"))
    rows = arrays.get("rows", np.arange(1, n + 1))
    for key, array, kinds, kind_name in [("emotion", emotion, "iu", "int"), ("usage", usage, "US", "str"),
                                         ("rows", rows, "iu", "int")]:
        if array.dtype.kind not in kinds or array.shape != (n,):
            raise DataError(path, f"array '{key}' is {array.dtype} {array.shape}; "
                            f"expected {kind_name} ({n},) to match 'pixels'")
    usage, emotion, rows = usage.astype(str), emotion.astype(np.int64), rows.astype(np.int64)
    skipped = list(zip(arrays.get("skipped_line", np.zeros(0, np.int64)).tolist(),
                       arrays.get("skipped_reason", np.zeros(0, str)).tolist(), strict=True))

    bad_label = (emotion < 0) | (emotion >= NUM_CLASSES)
    bad_usage = ~np.isin(usage, USAGES)
    keep = ~(bad_label | bad_usage)
    for i in np.flatnonzero(~keep):
        problem = (f"label {emotion[i]} out of range; expected {_LABEL_RANGE}" if bad_label[i]
                   else f"unknown Usage {str(usage[i])!r}; expected one of {', '.join(USAGES)}")
        if on_bad_row == "error":
            raise DataError(path, f"row {rows[i]}: {problem}")
        skipped.append((int(rows[i]), f"row {rows[i]}: {problem}"))
    if not keep.all():
        skipped.sort()
        pixels, emotion, usage, rows = pixels[keep], emotion[keep], usage[keep], rows[keep]
    return _Prepared(pixels, emotion, usage, rows, skipped)


# ---------------------------------------------------------------------------------------------------
# image folders


def _read_image_split(root: Path, folder: Path, on_bad_row: str, skipped: list, resized: list) -> Split:
    """One split folder; undecodable images go to `skipped` (skip mode), resized ones to `resized`."""
    from PIL import Image

    files = []
    for class_dir in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        label = CLASS_FOLDERS.get(class_dir.name.lower())
        if label is None:
            raise DataError(class_dir, f"unknown class folder '{class_dir.name}'; expected one of "
                            f"{', '.join(e.lower() for e in EMOTIONS)} or 0–{NUM_CLASSES - 1}")
        files += [(label, p.relative_to(root).as_posix(), p) for p in class_dir.iterdir()
                  if p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".") and p.is_file()]
    if not files:
        raise DataError(folder, f"no images; expected <class>/*.png|jpg|jpeg|bmp with classes "
                        f"{', '.join(e.lower() for e in EMOTIONS)} or 0–{NUM_CLASSES - 1}")
    files.sort(key=lambda f: f[:2])

    images = np.empty((len(files), IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
    decoded = []
    for i, (_, rel, file) in enumerate(files):
        try:
            with Image.open(file) as img:
                gray = img.convert("L")
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
            problem = f"cannot decode image ({e}); expected a {'/'.join(IMAGE_EXTENSIONS)} image"
            if on_bad_row == "error":
                raise DataError(file, problem) from None
            skipped.append((i + 1, f"{rel}: {problem}"))
            continue
        if gray.size != (IMAGE_SIZE, IMAGE_SIZE):
            resized.append((rel, gray.size))
            gray = gray.resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.BILINEAR)
        images[i] = np.asarray(gray, dtype=np.uint8)
        decoded.append(i)
    if not decoded:
        raise DataError(folder, f"none of its {len(files)} images decode; the first: {skipped[-len(files)][1]}")
    keep = np.array(decoded)
    labels = np.array([label for label, _, _ in files], dtype=np.int64)
    ids = np.array([rel for _, rel, _ in files], dtype=str)
    return Split(images[keep], labels[keep], keep + 1, ids[keep])
