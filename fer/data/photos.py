"""Faces in ordinary photos, made into what FER2013 holds: found with OpenCV's frontal-face Haar cascade (the
kind of detector FER2013's faces were found with), cropped square with a margin, grayscale, 48×48.

Photos come in any size, colour or grey, as JPEG, PNG or WebP, often rotated by an EXIF tag: Pillow reads
them and applies the tag. The cascade ships inside opencv-python-headless 4.x (`cv2.data`), so nothing is
downloaded at run time. A file that cannot be read is reported by the caller and skipped.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fer.data.images import open_image
from fer.environment import restored
from fer.errors import ConfigError, DataError
from fer.labels import IMAGE_SIZE
from fer.registry import Registry

SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp")
CASCADE = "haarcascade_frontalface_default.xml"


def opencv():
    """cv2, imported where it is used: its loader prepends to LD_LIBRARY_PATH for child processes (an empty
    entry when it has nothing to add), which fer puts back as it was. OpenCV's and FFmpeg's own log lines are
    silenced (unless OPENCV_LOG_LEVEL / OPENCV_FFMPEG_LOGLEVEL ask for them): fer says itself what failed."""
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET
    with restored("LD_LIBRARY_PATH"):
        import cv2

    if "OPENCV_LOG_LEVEL" not in os.environ:
        silent = 0  # LOG_LEVEL_SILENT: cv2.utils.logging.setLogLevel in newer wheels, cv2.setLogLevel in 4.8
        getattr(cv2.utils, "logging", cv2).setLogLevel(silent)
    return cv2


@dataclass(frozen=True)
class Face:
    box: tuple[int, int, int, int]  # x, y, width, height in the upright photo
    pixels: np.ndarray  # uint8 (48, 48), as FER2013 stores a face


def photo_files(path: str | Path) -> list[Path]:
    """The photo `path`, or the photos in the folder `path` (and its subfolders), in name order."""
    root = Path(path).expanduser()
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise DataError(f"images={path}", "no such file or folder")
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)
    if not files:
        raise DataError(f"images={path}", f"the folder has no photos ({', '.join(SUFFIXES)})")
    return files


def read_photo(path: Path) -> np.ndarray:
    """The photo upright (EXIF orientation applied) as RGB uint8 (H, W, 3); DataError when it is no image."""
    return np.asarray(open_image(path, f"one of {', '.join(SUFFIXES)}").convert("RGB"))


def grayscale(rgb: np.ndarray) -> np.ndarray:
    cv2 = opencv()
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)


def crop(gray: np.ndarray, box: tuple[int, int, int, int], margin: float) -> np.ndarray:
    """The square around `box`, grown by `margin` of its size on each side (edge pixels repeated where it
    leaves the photo), resized to 48×48."""
    cv2 = opencv()
    x, y, w, h = box
    side = int(round(max(w, h) * (1 + 2 * margin)))
    cx, cy = x + w / 2, y + h / 2
    left, top = int(round(cx - side / 2)), int(round(cy - side / 2))
    pad = max(0, -left, -top, left + side - gray.shape[1], top + side - gray.shape[0])
    padded = cv2.copyMakeBorder(gray, pad, pad, pad, pad, cv2.BORDER_REPLICATE) if pad else gray
    square = padded[top + pad:top + pad + side, left + pad:left + pad + side]
    return cv2.resize(square, (IMAGE_SIZE, IMAGE_SIZE), interpolation=cv2.INTER_AREA)


_cascade = None  # cv2.CascadeClassifier, loaded once


def cascade_boxes(gray: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Frontal faces at least 1/12 of the photo's shorter side, left to right."""
    global _cascade
    cv2 = opencv()
    if _cascade is None:
        _cascade = cv2.CascadeClassifier(str(Path(cv2.data.haarcascades) / CASCADE))
    smallest = max(24, min(gray.shape) // 12)
    found = _cascade.detectMultiScale(cv2.equalizeHist(gray), scaleFactor=1.1, minNeighbors=5,
                                      minSize=(smallest, smallest))
    return sorted((tuple(int(v) for v in b) for b in found), key=lambda b: (b[0], b[1]))


def whole_image(gray: np.ndarray) -> list[tuple[int, int, int, int]]:
    return [(0, 0, gray.shape[1], gray.shape[0])]


DETECTORS = Registry("detect", {"cascade": cascade_boxes, "none": whole_image})


def check_detection(detect: str, margin: float) -> None:
    """`detect` and `margin` as a command got them, refused before any photo is read."""
    DETECTORS.get(detect)
    if margin < 0:
        raise ConfigError("margin", "0 or more (a fraction of the face's size)", margin)


def find_faces(rgb: np.ndarray, detect: str, margin: float) -> list[Face]:
    """The faces of one photo; with `detect=none` the photo is one face (already cropped: no margin)."""
    gray = grayscale(rgb)
    boxes = DETECTORS.get(detect)(gray)
    return [Face(box, crop(gray, box, margin if detect != "none" else 0.0)) for box in boxes]


def faces_in(root: str | Path, files: Iterable[Path], detect: str, margin: float, say: Callable[[str], None]
             ) -> Iterator[tuple[str, np.ndarray, list[Face]]]:
    """(name under `root`, RGB photo, its faces) for each of `files` that has one; a file that is no image or
    has no face is `say`-ed once and left out."""
    root = Path(root).expanduser()
    for path in files:
        name = path.relative_to(root).as_posix() if root.is_dir() else path.name
        try:
            rgb = read_photo(path)
        except DataError as e:
            say(f"skipped {e}")
            continue
        faces = find_faces(rgb, detect, margin)
        if not faces:
            say(f"{name}: no face found")
            continue
        yield name, rgb, faces
