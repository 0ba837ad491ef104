"""FER+ (Microsoft's `fer2013new.csv`, MIT): ten annotators' votes for every FER2013 face, row-aligned with
fer2013.csv, as the eight-class labels of `data=ferplus` or the cleaning of `data=fer2013 data.clean=ferplus`.

Votes become labels as the paper's own code does (Barsoum et al. 2016; microsoft/FERPlus `ferplus.py`,
`_process_data` and `_process_target`), so results compare with its table:
- a single vote for a class is an outlier and removed first;
- majority: the class with more than half of the remaining votes; a tie or no such class makes the face
  unknown;
- probability and crossentropy: the most-voted classes, in vote order, until they hold 75 % of the votes
  (at most three; tied classes enter together); unknown if they hold half of the votes or less, or if unknown
  or not-a-face is among the most voted before any emotion;
- multilabel: every class with at least 30 % of the votes; unknown if they hold half of the votes or less.
A face whose processed votes peak at unknown or not-a-face (NF) is dropped. PublicTest and PrivateTest rows are
always processed by majority, as the paper evaluates (a validation split carved from Training keeps Training's).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fer.console import say
from fer.data.readers.base import INTEGER, ReadResult, read_bytes, show
from fer.data.readers.fer2013 import USAGES, Rows, read_rows
from fer.errors import DataError
from fer.labels import FERPLUS_EMOTIONS
from fer.registry import Registry

VOTE_COLUMNS = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt", "unknown",
                "NF")
HEADER = ("Usage", "Image name", *VOTE_COLUMNS)
EMOTION_COUNT = len(FERPLUS_EMOTIONS)  # the vote columns before unknown and NF
UNKNOWN, NOT_A_FACE = EMOTION_COUNT, EMOTION_COUNT + 1
MULTILABEL_SHARE = 0.3  # multilabel: a class with this share of the votes counts as right

LABEL_MODES = Registry("data.label_mode", {
    "majority": "the class with more than half of the votes (single votes removed); faces without one dropped",
    "probability": "a label drawn from the vote distribution, anew at each step",
    "crossentropy": "cross-entropy against the vote distribution",
    "multilabel": "every class with at least 30 % of the votes counts as right (the loss of the likeliest)",
})
CLEANING = Registry("data.clean", {
    "none": "FER2013 as it is",
    "ferplus": "without the faces FER+'s annotators mark as not a face (needs data.labels)",
})


@dataclass(frozen=True)
class Votes:
    """The labels file: per row (row j on line j + 2), the Usage, whether FER+ has an image, and the votes."""

    path: Path
    usage: np.ndarray  # str (N,)
    named: np.ndarray  # bool (N,): the Image name is not empty
    counts: np.ndarray  # float64 (N, 10), VOTE_COLUMNS order

    def __len__(self) -> int:
        return len(self.usage)


def read_votes(path) -> Votes:
    """fer2013new.csv, checked: its header, ten non-negative integer votes and a known Usage on every row."""
    path = Path(path).expanduser()
    expected = ",".join(HEADER)
    text = read_bytes(path, f"the FER+ header {expected} and one row per FER2013 face").decode("utf-8", "replace")
    reader = csv.reader(io.StringIO(text))
    header = [name.strip() for name in next(reader)]
    if [h.lower() for h in header] != [h.lower() for h in HEADER]:
        at = next((i for i, (h, want) in enumerate(zip(header, HEADER, strict=False)) if h.lower() != want.lower()),
                  min(len(header), len(HEADER)))
        found = f"column {at + 1} is {header[at]!r}" if at < len(header) else f"only {len(header)} columns"
        raise DataError(path, f"not the FER+ header: {found}; expected {expected}", line=1)
    usage, named, names, counts = [], [], [], []
    for line_no, fields in enumerate(reader, 2):
        if not fields:
            continue
        if len(fields) != len(HEADER):
            raise DataError(path, f"{len(fields)} fields; expected {len(HEADER)} ({expected})", line=line_no)
        if fields[0].strip() not in USAGES:
            raise DataError(path, f"Usage {show(fields[0].encode())}; expected one of {', '.join(USAGES)}",
                            line=line_no)
        row = []
        for name, token in zip(VOTE_COLUMNS, fields[2:], strict=True):
            token = token.strip()
            if not INTEGER.fullmatch(token.encode()) or int(token) < 0:
                raise DataError(path, f"column '{name}': {show(token.encode())} is not a vote count; expected a "
                                "whole number 0 or more", line=line_no)
            row.append(int(token))
        usage.append(fields[0].strip())
        names.append(fields[1].strip())
        named.append(bool(names[-1]))
        counts.append(row)
    if not usage:
        raise DataError(path, "no rows after the header; expected one per FER2013 face")
    check_order(path, names)
    return Votes(path, np.array(usage, dtype=str), np.array(named), np.array(counts, dtype=np.float64))


# FER+ names each face's image, numbered in the order of fer2013.csv's rows; in the published file these four are
# the only names lower than the name before them
PUBLISHED_OUT_OF_ORDER = {"fer0005265.png", "fer0005339.png", "fer0008403.png", "fer0033120.png"}
IMAGE_NAME = re.compile(r"fer(\d+)\.png")


def check_order(path: Path, names: list[str]) -> None:
    """The rows in FER+'s published order, read from the image names: the labels pair with the pixels by
    position, so a file whose rows were reordered would give each face another face's votes."""
    previous, out_of_order = None, []
    for line, name in enumerate(names, 2):
        number = IMAGE_NAME.fullmatch(name)
        if number is None:
            continue
        if previous and int(number[1]) < int(previous[1]) and name not in PUBLISHED_OUT_OF_ORDER:
            out_of_order.append((line, name, previous[0]))
        previous = (name, number[1])
    if out_of_order:
        line, name, before = out_of_order[0]
        raise DataError(path, f"Image name {name} after {before}: the rows are not in FER+'s published order "
                        f"({len(out_of_order):,} such places), and FER+ pairs with FER2013's pixels by position, so "
                        "faces would get other faces' votes; expected fer2013new.csv with its rows as published",
                        line=line)


def without_outliers(votes: np.ndarray) -> np.ndarray:
    """The votes with each single vote for a class removed: the paper counts it as an outlier."""
    return np.where(votes <= 1.0, 0.0, votes)


def process(votes: np.ndarray, mode: str) -> np.ndarray:
    """One face's ten votes → ten shares summing to 1, as the paper's `_process_data` makes them for `mode`
    (all of it on unknown when the face has no usable label). Line for line the paper's loop, ties included."""
    raw = without_outliers(votes)
    total = raw.sum()
    unknown = np.zeros(len(raw))
    unknown[UNKNOWN] = 1.0
    out = np.zeros(len(raw))
    if mode == "majority":
        if raw.max() > 0.5 * total:
            out[raw.argmax()] = raw.max()
        else:
            return unknown
    elif mode in ("probability", "crossentropy"):
        left, part, count, valid = raw.copy(), 0.0, 0, True
        while part < 0.75 * total and count < 3 and valid:
            peak = left.max()
            for i in range(len(left)):
                if left[i] == peak:
                    out[i], left[i] = peak, 0.0
                    part += out[i]
                    count += 1
                    if i >= UNKNOWN:  # unknown or not-a-face among the most voted
                        valid = False
                        if out.sum() > peak:  # emotions came before it: it does not count
                            out[i] = 0.0
                            count -= 1
                        break
        if out.sum() <= 0.5 * total or count > 3:
            return unknown
    else:  # multilabel
        chosen = raw >= MULTILABEL_SHARE * total
        out[chosen] = raw[chosen]
        if out.sum() <= 0.5 * total:
            return unknown
    return out / out.sum()


def why_dropped(votes: np.ndarray, named: bool) -> str:
    """What made a face unusable, said for the dropped-rows list."""
    if not named:
        return "FER+ has no image for it (not a face)"
    raw = without_outliers(votes)
    tally = f"{', '.join(f'{VOTE_COLUMNS[i]} {int(v)}' for i, v in enumerate(votes) if v)}"
    if raw.argmax() == NOT_A_FACE:
        return f"not a face ({tally})"
    if raw.argmax() == UNKNOWN:
        return f"unknown ({tally})"
    return f"no clear label ({tally})"


def labelled(votes: Votes, mode: str) -> tuple[np.ndarray, np.ndarray]:
    """Per row: whether it is kept, and its eight-class target (rows of zeros where dropped)."""
    shares = np.array([process(v, mode) for v in votes.counts]) if len(votes) else np.zeros((0, len(VOTE_COLUMNS)))
    keep = votes.named & (shares.argmax(1) < EMOTION_COUNT)
    targets = np.zeros((len(votes), EMOTION_COUNT))
    kept = shares[keep, :EMOTION_COUNT]
    targets[keep] = kept / kept.sum(1, keepdims=True)
    return keep, targets


def align(rows: Rows, source: Path, votes: Votes) -> np.ndarray:
    """The labels row of each pixel row (by position), after checking the files are row-aligned: enough labels
    rows, and the same Usage on every row."""
    needed = int(rows.positions.max()) + 1 if len(rows.positions) else 0
    if len(votes) < needed:
        raise DataError(votes.path, f"{len(votes):,} rows; expected {needed:,} or more, one per row of {source} "
                        "(FER+ is row-aligned with fer2013.csv)")
    at = rows.positions
    differ = np.flatnonzero(votes.usage[at] != rows.usage)
    if len(differ):
        i = differ[0]
        raise DataError(votes.path, f"Usage {votes.usage[at[i]]} but row {rows.rows[i]} of {source} is "
                        f"{rows.usage[i]} ({len(differ):,} of {len(at):,} rows disagree): the files are not "
                        "row-aligned; expected fer2013new.csv beside the fer2013.csv it relabels",
                        line=int(at[i]) + 2)
    if len(votes) > needed:
        say(f"note: {votes.path.name} has {len(votes):,} rows and {source.name} {needed:,}: the first "
            f"{needed:,} are paired by position", err=True)
    return at


def dropped_list(rows: Rows, votes: Votes, at: np.ndarray, drop: np.ndarray) -> list[tuple[int, str]]:
    """(row of the pixel file, why) of each dropped face, naming the labels file's line."""
    name = votes.path.name
    return [(int(rows.rows[i]), f"{name}:{at[i] + 2}: {why_dropped(votes.counts[at[i]], votes.named[at[i]])}")
            for i in np.flatnonzero(drop)]


def say_dropped(rows: Rows, drop: np.ndarray, what: str) -> None:
    by_split = ", ".join(f"{u} {int((rows.usage[drop] == u).sum()):,}" for u in dict.fromkeys(rows.usage.tolist()))
    say(f"FER+ left out {int(drop.sum()):,} of {len(drop):,} faces as {what} ({by_split}); the run lists "
        "them in dropped_rows.csv", err=True)


def paired(path, labels, on_bad_row: str) -> tuple[Path, Rows, Votes, np.ndarray]:
    """The pixel file's rows, the labels file's votes, and the votes row of each pixel row (checked aligned)."""
    source = Path(path)
    rows = read_rows(source, on_bad_row)
    votes = read_votes(labels)
    return source, rows, votes, align(rows, source, votes)


def read_ferplus(path, labels, label_mode: str = "majority", on_bad_row: str = "error") -> ReadResult:
    """FER2013's pixels (csv, csv.gz or npz) with FER+'s eight-class labels: training rows targeted by
    `label_mode`, validation and test rows by majority, each split's `targets` the label distributions."""
    LABEL_MODES.get(label_mode)
    source, rows, votes, at = paired(path, labels, on_bad_row)
    training = rows.usage == "Training"
    keep_eval, eval_targets = labelled(votes, "majority")
    keep_train, train_targets = (keep_eval, eval_targets) if label_mode == "majority" else labelled(votes,
                                                                                                   label_mode)
    keep = np.where(training, keep_train[at], keep_eval[at])
    raw = votes.counts[at, :EMOTION_COUNT]
    shares = raw / np.maximum(raw.sum(1, keepdims=True), 1.0)  # validation and test: the annotators' own votes
    targets = np.where(training[:, None], train_targets[at], shares).astype(np.float32)
    labels_ = np.where(training, train_targets[at].argmax(1), eval_targets[at].argmax(1))
    how = ("majority" if label_mode == "majority"
           else f"data.label_mode={label_mode} for Training, majority for PublicTest and PrivateTest")
    say_dropped(rows, ~keep, f"not a face or without a clear label ({how})")
    dropped = dropped_list(rows, votes, at, ~keep)
    relabelled = dataclasses.replace(rows, emotion=labels_.astype(np.int64))
    result = relabelled.take(keep).result(source, on_bad_row, targets[keep])
    return ReadResult(result.splits, result.skipped, dropped, FERPLUS_EMOTIONS)


def clean_fer2013(path, labels, on_bad_row: str = "error") -> ReadResult:
    """FER2013 with its own labels, less the faces FER+ marks as not a face (by majority, or without an image)."""
    source, rows, votes, at = paired(path, labels, on_bad_row)
    raw = without_outliers(votes.counts)
    not_a_face = ~votes.named | (raw[:, NOT_A_FACE] > 0.5 * raw.sum(1))
    drop = not_a_face[at]
    say_dropped(rows, drop, "not a face (data.clean=ferplus)")
    result = rows.take(~drop).result(source, on_bad_row)
    return ReadResult(result.splits, result.skipped, dropped_list(rows, votes, at, drop))
