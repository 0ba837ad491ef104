"""What every reader shares: the result it returns, how a bad row is handled (`data.on_bad_row`), and the
parser of a csv with a pixel column, which the Kaggle and HW3 formats both are.

A bad file fails with one `DataError` line naming the file, the line (or key) and what was expected; with
`on_bad_row="skip"` malformed rows are dropped instead and listed so a run can report what it left out.
"""

from __future__ import annotations

import csv
import gzip
import re
import warnings
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fer.data.splits import Split
from fer.errors import DataError
from fer.labels import EMOTIONS, IMAGE_SIZE, NUM_CLASSES, PIXELS
from fer.registry import Registry

ON_BAD_ROW = Registry("data.on_bad_row", {"error": "stop at the first malformed row, naming it",
                                          "skip": "leave malformed rows out and list them in the run"})
INTEGER = re.compile(rb"[+-]?[0-9]+")
LABEL_RANGE = f"0–{NUM_CLASSES - 1} ({', '.join(f'{i} {e}' for i, e in enumerate(EMOTIONS))})"


@dataclass(frozen=True)
class ReadResult:
    """What a reader found: the splits by source name, the (line, reason) of malformed rows it skipped and of
    rows it dropped on purpose (FER+'s not-a-face faces), and the class names in label order."""

    splits: dict[str, Split]
    skipped: list[tuple[int, str]] = field(default_factory=list)
    dropped: list[tuple[int, str]] = field(default_factory=list)
    classes: tuple[str, ...] = EMOTIONS


class BadRow(Exception):
    """One malformed row; the caller decides whether it is fatal (`on_bad_row`)."""


@dataclass
class Column:
    name: str  # as written in the header; matched case-insensitively
    parse: Callable[[bytes], object]
    required: bool = True


@dataclass
class Table:
    images: np.ndarray  # uint8 (N, 48, 48)
    values: dict[str, list]  # parsed non-pixel columns by lower-case name
    rows: np.ndarray  # 1-based line numbers
    skipped: list[tuple[int, str]]
    positions: np.ndarray  # 0-based index of each row among the data rows, skipped ones counted (row alignment)


def check_mode(on_bad_row: str) -> None:
    if on_bad_row not in ON_BAD_ROW:
        raise ValueError(f"on_bad_row must be one of {', '.join(ON_BAD_ROW)}, got {on_bad_row!r}")


def show(token: bytes, limit: int = 20) -> str:
    """A token as it can be quoted in a one-line message."""
    text = token.decode("utf-8", "replace")
    return repr(text if len(text) <= limit else text[:limit] + "…")


def parse_label(token: bytes) -> int:
    token = token.strip()
    if not INTEGER.fullmatch(token):
        raise BadRow(f"label {show(token)} is not an integer; expected {LABEL_RANGE}")
    value = int(token)
    if not 0 <= value < NUM_CLASSES:
        raise BadRow(f"label {value} out of range; expected {LABEL_RANGE}")
    return value


def parse_id(token: bytes) -> int:
    token = token.strip()
    if not INTEGER.fullmatch(token):
        raise BadRow(f"id {show(token)} is not an integer; expected an integer id")
    return int(token)


def _parse_pixels_slowly(token: bytes) -> np.ndarray:
    """Row-by-row validation, run only on rows the bulk parse rejected, to say what is wrong."""
    values = []
    for position, part in enumerate(token.split(), 1):
        if not INTEGER.fullmatch(part):
            raise BadRow(f"non-numeric pixel {show(part)} at position {position}; expected integers 0–255")
        value = int(part)
        if not 0 <= value <= 255:
            raise BadRow(f"pixel value {value} at position {position} out of range; expected 0–255")
        values.append(value)
    if len(values) != PIXELS:
        raise BadRow(f"{len(values)} pixels, expected {PIXELS} (48×48)")
    return np.array(values, dtype=np.uint8)


NOT_TEXT = {b"\x89PNG": "a PNG image", b"\xff\xd8\xff": "a JPEG image", b"GIF8": "a GIF image",
            b"PK\x03\x04": "a zip archive (an Excel workbook is one: save it as CSV UTF-8)", b"%PDF": "a PDF document",
            b"\xff\xfe": "UTF-16 text (save it as CSV UTF-8)", b"\xfe\xff": "UTF-16 text (save it as CSV UTF-8)"}


def not_text(data: bytes) -> str | None:
    """What a file that is not a text csv is, from its first bytes; None when it may be one."""
    kind = next((kind for magic, kind in NOT_TEXT.items() if data.startswith(magic)), None)
    return kind or ("binary data (NUL bytes)" if b"\x00" in data[:4096] else None)


def read_bytes(path: Path, expected: str) -> bytes:
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
    if kind := not_text(data):
        raise DataError(path, f"{kind}, not a text csv; expected {expected}")
    return data


def parse_csv(path: Path, pixel_column: str, columns: list[Column], on_bad_row: str) -> Table:
    """Parse a header + rows csv with a pixel column, fast in bulk and exact about bad rows.

    Pixel strings made only of digits and spaces go through numpy's C parser; any other row is
    re-checked token by token so the error names the line and the offending token.
    """
    wanted = [columns[0], Column(pixel_column, _parse_pixels_slowly), *columns[1:]]  # the files' own order
    expected = ",".join(c.name if c.required else f"[{c.name}]" for c in wanted)
    lines = read_bytes(path, f"a header {expected} and one row per image").splitlines()
    header_text = lines[0].decode("utf-8", "replace").strip()
    header = [name.strip().lower() for name in next(csv.reader([header_text]), [])]
    index = {}
    for column in wanted:
        key = column.name.lower()
        if key in header:
            index[key] = header.index(key)
        elif column.required:
            raise DataError(path, f"missing column '{column.name}': expected columns {expected}, "
                            f"found header {show(lines[0], 80)}", line=1)
    pixel_at = index.pop(pixel_column.lower())
    parse_of = {c.name.lower(): c.parse for c in columns}
    parsers = [(key, at, parse_of[key]) for key, at in index.items()]
    n_fields = max([pixel_at, *index.values()]) + 1

    images = np.empty((len(lines), PIXELS), dtype=np.uint8)
    values: dict[str, list] = {key: [] for key in index}
    rows: list[int] = []
    positions: list[int] = []
    skipped: list[tuple[int, str]] = []
    position = -1
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)  # older numpy warns instead of raising on junk
        for line_no, line in enumerate(lines[1:], 2):
            if not line or line.isspace():
                continue
            position += 1
            try:
                if b'"' in line:
                    fields = [f.encode("utf-8") for f in next(csv.reader([line.decode("utf-8", "replace")]))]
                else:
                    fields = line.split(b",")
                if len(fields) < n_fields:
                    raise BadRow(f"only {len(fields)} of {len(header)} fields; expected one per header column "
                                  f"({header_text[:80]})")
                parsed = [(key, parse(fields[at])) for key, at, parse in parsers]
                images[len(rows)] = _parse_pixels(fields[pixel_at])
            except BadRow as e:
                if on_bad_row == "error":
                    raise DataError(path, str(e), line=line_no) from None
                skipped.append((line_no, str(e)))
                continue
            for key, value in parsed:
                values[key].append(value)
            rows.append(line_no)
            positions.append(position)
    if not rows:
        if skipped:
            line_no, reason = skipped[0]
            raise DataError(path, f"all {len(skipped)} data rows are malformed; the first, line {line_no}: "
                            f"{reason}")
        raise DataError(path, "no data rows after the header; expected one row per image")
    n = len(rows)
    images = images[:n].reshape(n, IMAGE_SIZE, IMAGE_SIZE)
    return Table(images, values, np.array(rows, dtype=np.int64), skipped, np.array(positions, dtype=np.int64))


def _parse_pixels(token: bytes) -> np.ndarray:
    if not token.translate(None, b"0123456789 "):
        try:
            values = np.fromstring(token, dtype=np.int64, sep=" ")
        except (ValueError, DeprecationWarning):
            values = None
        if values is not None and values.size == PIXELS and values.max() <= 255:
            return values
    return _parse_pixels_slowly(token)
