"""Faces in motion: the frames of a video file (or a camera) read with OpenCV, and each face followed across frames.

OpenCV's wheel decodes what its bundled FFmpeg decodes (mp4, avi, mov, mkv, webm), with no second video library.
When it cannot open a file it says nothing of why, so the container is recognized here from the file's first bytes
to tell a file that is no video from a video whose codec this FFmpeg lacks, or an mp4 cut off while recording.
Faces are followed by the overlap of their boxes from one analysed frame to the next (a face keeps its id while
it stays in view): the detector finds faces anew in every frame, so nothing heavier is needed to join them.
"""

from __future__ import annotations

import mmap
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fer.data.photos import SUFFIXES as PHOTO_SUFFIXES
from fer.data.photos import opencv
from fer.errors import DataError

MIN_OVERLAP = 0.3  # intersection over union for a box to continue a face's track
LOST_AFTER_S = 1.0  # a face not seen for this long leaves view; seen again later, it gets a new id
RE_ENCODE = "re-encode it, e.g. `ffmpeg -i {path} -c:v libx264 out.mp4`"


@dataclass
class Video:
    """An open video: its frames per second, size, frame count (None for a camera) and OpenCV's capture."""

    source: str
    capture: object
    fps: float
    width: int
    height: int
    frames: int | None
    is_camera: bool = False
    _first: np.ndarray | None = field(default=None, repr=False)

    def __iter__(self) -> Iterator[tuple[int, float, np.ndarray]]:
        """(frame index, seconds from the start, BGR frame) in order; a camera's time is the wall clock's."""
        started = time.monotonic()
        index, frame = 0, self._first
        while frame is not None:
            yield index, (time.monotonic() - started if self.is_camera else index / self.fps), frame
            ok, frame = self.capture.read()
            frame = frame if ok else None
            index += 1

    def close(self) -> None:
        self.capture.release()


def container(head: bytes) -> str | None:
    """The video container a file's first 12 bytes name, or None when they name none."""
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "AVI"
    if head[4:8] == b"ftyp":
        return "MP4/MOV"
    if head[:4] == b"\x1aE\xdf\xa3":
        return "Matroska/WebM"
    if head[:4] == b"OggS":
        return "Ogg"
    if head[:3] == b"FLV":
        return "FLV"
    return None


def find(path: Path, marker: bytes) -> int:
    """Where `marker` first occurs in the file (-1 if nowhere), without reading a large video into memory."""
    with path.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
        return data.find(marker)


def codec_tag(path: Path, kind: str) -> str | None:
    """The video codec's four-character code where the container states it plainly (AVI, MP4/MOV): after the
    AVI stream header's `vids`, or in the first entry of the MP4 sample description box `stsd`."""
    at, offset = (find(path, b"vids"), 4) if kind == "AVI" else (find(path, b"stsd"), 16)
    if at < 0:
        return None
    with path.open("rb") as f:
        f.seek(at + offset)
        tag = f.read(4)
    return tag.decode("ascii") if len(tag) == 4 and tag.isascii() and tag.strip(b"\0 ").isalnum() else None


def why_unreadable(path: Path) -> str:
    """What stops OpenCV reading the video at `path`, from what the file shows."""
    with path.open("rb") as f:
        kind = container(f.read(12))
    if kind is None:
        return "not a video OpenCV's FFmpeg can read (mp4, avi, mov, mkv, webm)"
    if kind == "MP4/MOV":
        index = find(path, b"moov")
        with path.open("rb") as f:
            f.seek(max(0, index - 4))
            size = int.from_bytes(f.read(4), "big")
        if index < 0 or index - 4 + size > path.stat().st_size:
            return "an MP4/MOV cut off before its index (moov) was complete: the recording did not finish; " \
                   + RE_ENCODE.format(path=path) + " if a player can still show it"
        if find(path, b"stsd") < 0:
            return "the video has no frames (an MP4/MOV with no video track)"
    tag = codec_tag(path, kind)
    codec = f"its codec ({tag})" if tag else "its codec"
    return f"a video in {kind}, but {codec} is not one this OpenCV wheel's " \
           f"FFmpeg decodes: {RE_ENCODE.format(path=path)}"


def open_video(source: str) -> Video:
    """The video file `source`, or camera number `source` (digits); one DataError line when it cannot be read."""
    cv2 = opencv()
    key = f"video={source}"
    if str(source).isdigit() and not Path(source).exists():
        capture = cv2.VideoCapture(int(source))
        ok, first = capture.read() if capture.isOpened() else (False, None)
        if not ok:
            capture.release()
            raise DataError(key, f"camera {source} gives no frames (is it there, and free?)")
        return Video(str(source), capture, 0.0, first.shape[1], first.shape[0], None, True, first)
    path = Path(source).expanduser()
    if not path.is_file():
        raise DataError(key, "no such file" if not path.exists() else "a folder, not a video file")
    if path.suffix.lower() in PHOTO_SUFFIXES:
        raise DataError(key, f"a photo, not a video: for photos use images={source}")
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise DataError(key, why_unreadable(path))
    count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    ok, first = capture.read()
    if not ok:
        capture.release()
        raise DataError(key, "the video has no frames" if count <= 0 else why_unreadable(path))
    fps = capture.get(cv2.CAP_PROP_FPS)
    return Video(str(path), capture, fps if fps and np.isfinite(fps) and fps > 0 else 25.0, first.shape[1],
                 first.shape[0], count if count > 0 else None, False, first)


def overlap(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    """Intersection over union of two (x, y, width, height) boxes."""
    w = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    h = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    inter = max(0, w) * max(0, h)
    return inter / (a[2] * a[3] + b[2] * b[3] - inter) if inter else 0.0


class FaceTracks:
    """Ids for the faces of successive frames: a box continues the track whose last box it overlaps most
    (MIN_OVERLAP at least, each track once per frame); one that continues none starts a new id."""

    def __init__(self):
        self.last: dict[int, tuple[tuple[int, int, int, int], float]] = {}  # id → (last box, seconds seen)
        self.next_id = 0

    def assign(self, boxes: list[tuple[int, int, int, int]], seconds: float) -> list[int]:
        live = {i: box for i, (box, seen) in self.last.items() if seconds - seen <= LOST_AFTER_S}
        pairs = sorted(((overlap(box, old), k, i) for k, box in enumerate(boxes) for i, old in live.items()),
                       reverse=True)
        ids: list[int | None] = [None] * len(boxes)
        for score, k, i in pairs:
            if score < MIN_OVERLAP:
                break
            if ids[k] is None and i in live:
                ids[k] = i
                del live[i]
        for k, box in enumerate(boxes):
            if ids[k] is None:
                ids[k], self.next_id = self.next_id, self.next_id + 1
            self.last[ids[k]] = (box, seconds)
        return ids  # type: ignore[return-value]
