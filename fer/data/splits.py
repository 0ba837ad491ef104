"""The in-memory form of a data set and how a reader's splits become train / val / test: the validation policy
(`data.val_policy`) and `data.limit`."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from fer.console import say
from fer.errors import DataError
from fer.labels import EMOTIONS, IMAGE_SIZE
from fer.registry import Registry

VAL_POLICIES = Registry("data.val_policy", {
    "auto": "PublicTest when the data has a Usage column with it, else a random fraction of the training rows",
    "usage": "PublicTest (the Usage column), required",
    "fraction": "a random data.val_fraction of the training rows",
    "first": "the first data.val_count training rows",
})
USAGE_TESTS = {"PublicTest": "public", "PrivateTest": "private"}

UNLABELED = -1


@dataclass(frozen=True)
class Split:
    """One split of a data set.

    `rows` are the 1-based source line or row numbers, kept so errors and skipped-row logs can
    point back into the user's file; `ids` are the ids a Kaggle-style prediction file needs;
    `masks` (synthetic data only) mark the regions that decide each image's class; `targets` (FER+ only) are
    label distributions: what the model fits on the training split (`data.label_mode`), and the annotators'
    vote shares on the others, which the any-vote accuracy reads.
    """

    images: np.ndarray  # uint8 (N, 48, 48)
    labels: np.ndarray  # int64 (N,), UNLABELED where the source has no label
    rows: np.ndarray | None = None
    ids: np.ndarray | None = None
    masks: np.ndarray | None = None
    targets: np.ndarray | None = None  # float32 (N, classes), each row summing to 1

    def __post_init__(self):
        n = len(self.images)
        assert self.images.dtype == np.uint8 and self.images.shape[1:] == (IMAGE_SIZE, IMAGE_SIZE), self.images.shape
        assert self.labels.shape == (n,), (self.labels.shape, n)
        for extra in (self.rows, self.ids, self.masks, self.targets):
            assert extra is None or len(extra) == n

    def __len__(self) -> int:
        return len(self.images)

    @property
    def labeled(self) -> bool:
        return bool(len(self)) and bool((self.labels != UNLABELED).all())

    def take(self, index: np.ndarray) -> Split:
        """The rows at `index`, every per-row array kept aligned."""
        pick = lambda a: None if a is None else a[index]  # noqa: E731
        return Split(self.images[index], self.labels[index], pick(self.rows), pick(self.ids), pick(self.masks),
                     pick(self.targets))


@dataclass
class Splits:
    """What a run trains, selects and tests on.

    `tests` holds the labeled test splits by name (FER2013's PublicTest and PrivateTest are reported
    apart); `predict` the unlabeled rows a Kaggle-style prediction file is made for; `skipped` the
    (line, reason) of rows `data.on_bad_row=skip` dropped as malformed, `dropped` those left out on purpose (FER+'s
    not-a-face and unknown faces); `classes` names the labels in order.
    """

    train: Split
    val: Split
    tests: dict[str, Split]
    predict: Split | None = None
    skipped: list[tuple[int, str]] = field(default_factory=list)
    dropped: list[tuple[int, str]] = field(default_factory=list)
    classes: tuple[str, ...] = EMOTIONS


def carve_validation(train: Split, cfg, rng: np.random.Generator, source: str) -> tuple[Split, Split]:
    """Split the training rows: a random `val_fraction`, or the first `val_count` rows (`first`)."""
    n = len(train)
    first = cfg.val_policy == "first"
    k = (cfg.val_count if first else 0) or max(1, round(n * cfg.val_fraction))
    if k >= n:
        setting = f"val_count={cfg.val_count}" if first and cfg.val_count else f"val_fraction={cfg.val_fraction}"
        raise DataError(source, f"the train split has no rows: data.{setting} takes {k} of the {n} training rows for "
                        "validation; expected more training rows, or fewer for validation")
    if first:
        val_idx, train_idx = np.arange(k), np.arange(k, n)
    else:
        perm = rng.permutation(n)
        val_idx, train_idx = np.sort(perm[:k]), np.sort(perm[k:])
    return train.take(train_idx), train.take(val_idx)


def cap(split: Split, limit: int | None, rng: np.random.Generator) -> Split:
    """At most `limit` rows, a seeded random subset kept in source order (folders are sorted by class)."""
    if limit is None or len(split) <= limit:
        return split
    return split.take(np.sort(rng.permutation(len(split))[:limit]))


def arrange(raw: dict[str, Split], cfg, source: str, classes: tuple[str, ...] = EMOTIONS) -> Splits:
    """Apply the validation policy to a reader's splits (keyed by Usage, or train/test)."""
    rng = np.random.default_rng(cfg.seed)
    policy = cfg.val_policy
    if "Training" not in raw and "train" not in raw:
        raise DataError(source, "no training rows: expected Usage Training (or a train split); found "
                        + ", ".join(raw))
    if "Training" in raw:  # FER2013 with a Usage column
        if policy in ("auto", "usage") and "PublicTest" in raw:
            train, val = raw["Training"], raw["PublicTest"]
        elif policy == "usage":
            raise DataError(source, "data.val_policy=usage: expected PublicTest rows in the Usage column; found "
                            + ", ".join(raw))
        else:
            train, val = carve_validation(raw["Training"], cfg, rng, source)
        tests = {USAGE_TESTS[k]: v for k, v in raw.items() if k in USAGE_TESTS}
        predict = None
    else:
        if policy == "usage":
            raise DataError(source, "data.val_policy=usage: expected a Usage column, found none; "
                            "use val_policy fraction or first")
        train, val = carve_validation(raw["train"], cfg, rng, source)
        test = raw.get("test")
        tests = {"test": test} if test is not None and test.labeled else {}
        predict = test if test is not None and not test.labeled else None
    splits = Splits(
        train=cap(train, cfg.limit, rng),
        val=cap(val, cfg.limit, rng),
        tests={k: cap(v, cfg.limit, rng) for k, v in tests.items()},
        predict=predict,
        classes=classes,
    )
    check(splits, source)
    return splits


def check(splits: Splits, source: str) -> None:
    """No empty split; a class without training examples is allowed but said (its matrix row is empty)."""
    for name, split in [("train", splits.train), ("val", splits.val), *splits.tests.items()]:
        if len(split) == 0:
            raise DataError(source, f"the {name} split has no rows; expected at least one")
    missing = sorted(set(range(len(splits.classes))) - set(np.unique(splits.train.labels).tolist()))
    if missing:
        names = ", ".join(f"{i} {splits.classes[i]}" for i in missing)
        say(f"warning: no training example of class {names} in {source}: "
            "the model cannot learn it and its confusion-matrix row will be empty", err=True)
