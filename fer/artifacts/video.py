"""What `fer.predict video=…` hands back, written while the frames are analysed so that a stop keeps what was done:
emotions.csv (a row per analysed frame per face, flushed each frame) and annotated.mp4 (every frame, with the
latest analysis drawn on it); at the end, timeline.png (each face's class probabilities over time) and
summary.json (per face: frames seen, dominant expression, share of its time per class)."""

from __future__ import annotations

import csv
import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from fer.artifacts.annotated import draw_faces
from fer.data.photos import Face, find_faces, opencv
from fer.data.video import FaceTracks, Video
from fer.errors import FerError

COLUMNS = ("frame", "seconds", "face", "x", "y", "width", "height", "label", "probability")  # then one per class
FOURCC = "mp4v"  # MPEG-4 Part 2: the encoder every opencv-python wheel's FFmpeg has (no H.264 encoder in it)


class VideoRecord:
    """The outputs of one video in the folder `out`, fed frame by frame."""

    def __init__(self, out: Path, fps: float, size: tuple[int, int], classes: tuple[str, ...]):
        cv2 = opencv()
        out.mkdir(parents=True, exist_ok=True)
        self.out, self.classes = out, classes
        self.video = cv2.VideoWriter(str(out / "annotated.mp4"), cv2.VideoWriter_fourcc(*FOURCC), fps, size)
        if not self.video.isOpened():
            raise FerError(f"cannot write {out / 'annotated.mp4'}: OpenCV's video writer refused it ({FOURCC}, "
                           f"{size[0]}×{size[1]} at {fps:g} frames/s)")
        self._csv = (out / "emotions.csv").open("w", newline="")
        self._rows = csv.DictWriter(self._csv, (*COLUMNS, *classes))
        self._rows.writeheader()
        self.seen: dict[int, list[tuple[float, np.ndarray]]] = {}  # face id → [(seconds, probabilities)]
        self._shown: tuple[list[Face], np.ndarray, list[str]] = ([], np.zeros((0, len(classes))), [])
        self.frames_written = 0
        self.frames_analysed = 0

    def analysed(self, frame: int, seconds: float, ids: list[int], faces: list[Face], probs: np.ndarray) -> None:
        """The faces found in frame `frame` (at `seconds`), their track ids and class probabilities."""
        for face_id, face, p in zip(ids, faces, probs, strict=True):
            best = int(p.argmax())
            x, y, w, h = face.box
            self._rows.writerow({"frame": frame, "seconds": f"{seconds:.3f}", "face": face_id, "x": x, "y": y,
                                 "width": w, "height": h, "label": self.classes[best], "probability": f"{p[best]:.4f}",
                                 **{c: f"{v:.6f}" for c, v in zip(self.classes, p, strict=True)}})
            self.seen.setdefault(face_id, []).append((seconds, p))
        self._csv.flush()
        self._shown = (faces, probs, [f"#{i}" for i in ids])
        self.frames_analysed += 1

    def write(self, bgr: np.ndarray) -> None:
        """The frame into annotated.mp4 with the latest analysis drawn on it."""
        faces, probs, names = self._shown
        self.video.write(draw_faces(bgr.copy(), faces, probs, self.classes, names))
        self.frames_written += 1

    def close(self) -> None:
        self.video.release()
        self._csv.close()

    def summary(self) -> dict[str, dict]:
        """Per face id: analysed frames it was in, first and last second, its most frequent label and the share of
        its frames per label."""
        faces = {}
        for face_id, seen in sorted(self.seen.items()):
            labels = Counter(self.classes[int(p.argmax())] for _, p in seen)
            faces[str(face_id)] = {"frames": len(seen), "first_s": round(seen[0][0], 3),
                                   "last_s": round(seen[-1][0], 3), "dominant": labels.most_common(1)[0][0],
                                   "shares": {c: round(labels[c] / len(seen), 4) for c in self.classes}}
        return faces

    def finish(self) -> dict[str, dict]:
        """timeline.png and summary.json; returns the summary."""
        from fer.artifacts.figures import timeline_figure

        summary = self.summary()
        (self.out / "summary.json").write_text(json.dumps({"faces": summary}, indent=2) + "\n")
        fig = timeline_figure({int(i): ([s for s, _ in seen], np.stack([p for _, p in seen]))
                               for i, seen in self.seen.items()}, self.classes,
                              {int(i): f["dominant"] for i, f in summary.items()})
        fig.savefig(self.out / "timeline.png", dpi=100)
        return summary


def follow(video: Video, module, record: VideoRecord, every: int, detect: str, margin: float) -> Iterator[int]:
    """Every frame of `video` into `record`, every `every`-th one analysed: its faces found (as in photos), given
    the id of the face they continue, and classified in one batch with the run's TTA. Yields after each frame,
    so the caller draws progress or stops between two frames."""
    cv2, tracks = opencv(), FaceTracks()
    for index, seconds, bgr in video:
        if index % every == 0:
            faces = find_faces(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), detect, margin)
            probs = (module.classify(np.stack([f.pixels for f in faces])) if faces
                     else np.zeros((0, len(module.classes)), np.float32))
            record.analysed(index, seconds, tracks.assign([f.box for f in faces], seconds), faces, probs)
        record.write(bgr)
        yield index


def summary_lines(summary: dict[str, dict]) -> list[str]:
    """One line per face: `face #0: 62 frames, 0.0–2.4 s, mostly Happy (71 %; Neutral 20 %, Sad 9 %)`."""
    lines = []
    for face_id, f in summary.items():
        others = sorted(((s, c) for c, s in f["shares"].items() if s and c != f["dominant"]), reverse=True)[:3]
        rest = "; " + ", ".join(f"{c} {s:.0%}" for s, c in others) if others else ""
        lines.append(f"face #{face_id}: {f['frames']} frames, {f['first_s']:.1f}–{f['last_s']:.1f} s, mostly "
                     f"{f['dominant']} ({f['shares'][f['dominant']]:.0%}{rest})")
    return lines
