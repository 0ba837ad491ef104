"""The image-folder releases of FER2013 (`data=folder`): root/train/<class>/* and optionally root/test/<class>/*,
class folders named by emotion (in either public release's words) or by label number."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fer.console import say
from fer.data.images import open_image
from fer.data.readers.base import ReadResult, check_mode
from fer.data.splits import Split
from fer.errors import DataError
from fer.labels import EMOTIONS, IMAGE_SIZE, NUM_CLASSES

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp")
GRAY_MODES = ("L", "1", "LA")  # PIL modes that hold gray levels only (LA: gray with alpha; deeper gray is L by now)
# the class folders as FER2013's image releases name them: the emotion (angry, disgust, …: the common Kaggle
# release), its adjective (disgusted, fearful, surprised: another popular one), its noun (anger, happiness, …:
# FER+'s words) or the label number
ADJECTIVES = {"disgusted": 1, "fearful": 2, "surprised": 5}
NOUNS = {"anger": 0, "happiness": 3, "sadness": 4}
CLASS_FOLDERS = {**{e.lower(): i for i, e in enumerate(EMOTIONS)}, **ADJECTIVES, **NOUNS,
                 **{str(i): i for i in range(NUM_CLASSES)}}
_NAMINGS = (f"{', '.join(e.lower() for e in EMOTIONS)} (or {', '.join(ADJECTIVES)}; {', '.join(NOUNS)}) "
            f"or 0–{NUM_CLASSES - 1}")
_FOLDER_LAYOUT = f"train/<class>/*.png|jpg|jpeg|bmp and optionally test/<class>/*, class folders named {_NAMINGS}"


def read_folder(root, on_bad_row: str = "error") -> ReadResult:
    """The image-folder release: root/train/<class>/* and optionally root/test/<class>/*.

    Files are read in (class, path) order so runs are reproducible whatever the file system lists;
    `ids` are the paths relative to `root`, and an image's row is its position in that order. Images
    that are not 48×48 are resized and colour images made grayscale (one line says how many of each); with
    `on_bad_row="skip"` one that does not decode is listed in `skipped` instead of stopping the read.
    """
    check_mode(on_bad_row)
    root = Path(root)
    if not root.is_dir():
        problem = "is a file" if root.exists() else "no such folder"
        raise DataError(root, f"{problem}; expected a folder holding {_FOLDER_LAYOUT}")
    subdirs = {p.name.lower(): p for p in sorted(root.iterdir()) if p.is_dir()}
    if "train" not in subdirs:
        raise DataError(root, f"no train folder; expected {_FOLDER_LAYOUT}")
    splits, skipped, resized, coloured = {}, [], [], []
    for name in ("train", "test"):
        if name in subdirs:
            splits[name] = _read_image_split(root, subdirs[name], on_bad_row, skipped, resized, coloured)
    if resized:
        first, (w, h) = resized[0]
        say(f"resized {len(resized)} images of {root} to 48×48 (first: {first}, {w}×{h})", err=True)
    if coloured:
        first, mode = coloured[0]
        say(f"converted {len(coloured)} colour images of {root} to grayscale (first: {first}, {mode})", err=True)
    return ReadResult(splits, skipped)


def _read_image_split(root: Path, folder: Path, on_bad_row: str, skipped: list, resized: list,
                      coloured: list) -> Split:
    """One split folder; undecodable images go to `skipped` (skip mode), resized ones to `resized`, colour ones
    (anything but 8-bit or 1-bit gray) to `coloured`."""
    from PIL import Image

    files = []
    for class_dir in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        label = CLASS_FOLDERS.get(class_dir.name.lower())
        if label is None:
            raise DataError(class_dir, f"unknown class folder '{class_dir.name}'; expected one of {_NAMINGS}")
        files += [(label, p.relative_to(root).as_posix(), p) for p in class_dir.iterdir()
                  if p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".") and p.is_file()]
    if not files:
        raise DataError(folder, f"no images; expected <class>/*.png|jpg|jpeg|bmp with classes {_NAMINGS}")
    files.sort(key=lambda f: f[:2])

    images = np.empty((len(files), IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
    decoded = []
    for i, (_, rel, file) in enumerate(files):
        try:
            img = open_image(file, f"a {'/'.join(IMAGE_EXTENSIONS)} image")
        except DataError as e:
            if on_bad_row == "error":
                raise
            skipped.append((i + 1, f"{rel}: {e.problem}"))
            continue
        gray, mode = img.convert("L"), img.mode
        if mode not in GRAY_MODES:
            coloured.append((rel, mode))
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
