"""What `fer.predict images=…` hands back: predictions.csv (a row per face, a probability column per class of the
model) and each photo with its faces boxed and labelled, the two things a user looks at or feeds on."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from fer.data.photos import Face, opencv

COLUMNS = ("file", "face", "x", "y", "width", "height", "label", "probability")  # then one per class


def rows(file: str, faces: list[Face], probs: np.ndarray, classes: tuple[str, ...]) -> list[dict[str, object]]:
    out = []
    for k, (face, p) in enumerate(zip(faces, probs, strict=True)):
        best = int(p.argmax())
        x, y, w, h = face.box
        out.append({"file": file, "face": k, "x": x, "y": y, "width": w, "height": h, "label": classes[best],
                    "probability": f"{p[best]:.4f}", **{e: f"{v:.6f}" for e, v in zip(classes, p, strict=True)}})
    return out


def write_csv(path: Path, table: list[dict[str, object]], classes: tuple[str, ...]) -> None:
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, (*COLUMNS, *classes))
        writer.writeheader()
        writer.writerows(table)


def draw_faces(image: np.ndarray, faces: list[Face], probs: np.ndarray, classes: tuple[str, ...],
               names: list[str] | None = None) -> np.ndarray:
    """Each face's box and `[name ]label probability` above it, drawn into the BGR `image`, sized to it."""
    cv2 = opencv()
    thick = max(1, round(min(image.shape[:2]) / 250))
    scale = max(0.4, min(image.shape[:2]) / 800)
    for k, (face, p) in enumerate(zip(faces, probs, strict=True)):
        x, y, w, h = face.box
        best = int(p.argmax())
        text = f"{names[k] + ' ' if names else ''}{classes[best]} {p[best]:.0%}"
        cv2.rectangle(image, (x, y), (x + w, y + h), (0, 200, 0), thick)
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
        top = max(0, y - th - base - 2 * thick)
        cv2.rectangle(image, (x, top), (x + tw + 2 * thick, top + th + base + 2 * thick), (0, 200, 0), cv2.FILLED)
        cv2.putText(image, text, (x + thick, top + th + thick), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thick,
                    cv2.LINE_AA)
    return image


def annotate(rgb: np.ndarray, faces: list[Face], probs: np.ndarray, classes: tuple[str, ...]) -> np.ndarray:
    """A BGR copy of the photo with its faces drawn (`draw_faces`)."""
    cv2 = opencv()
    return draw_faces(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), faces, probs, classes)


def write_annotated(path: Path, rgb: np.ndarray, faces: list[Face], probs: np.ndarray,
                    classes: tuple[str, ...]) -> None:
    """In the photo's own format; WebP lossy at quality 90 (OpenCV's default, lossless, takes 0.5 s a megapixel)."""
    cv2 = opencv()
    path.parent.mkdir(parents=True, exist_ok=True)
    options = [cv2.IMWRITE_WEBP_QUALITY, 90] if path.suffix.lower() == ".webp" else []
    if not cv2.imwrite(str(path), annotate(rgb, faces, probs, classes), options):
        raise OSError(f"cannot write {path}")
