"""A page that shows a trained model to anyone at the keyboard: a photo dropped in comes back with each face boxed,
its label, the class probabilities as bars and Grad-CAM of the predicted class over the face; a short video comes
back as each face's timeline and summary.

The faces go through what `fer.predict images=` and `video=` use (one detector, one crop, the run's TTA, one
loop over a video's frames), and the explanation through fer/explain. The page is one static file served by the
standard library's HTTP server, not Gradio: Gradio 6 would add twenty packages (huggingface_hub, httpx, …), raise
Pillow, and by default fetch Google's fonts and send analytics, where this page needs nothing beyond fer and never
leaves the machine.
"""

from __future__ import annotations

import base64
import io
import math
import tempfile
from pathlib import Path

import numpy as np
import torch

from fer.artifacts.video import VideoRecord, follow
from fer.data.images import open_image
from fer.data.photos import find_faces, opencv
from fer.data.video import container, open_video
from fer.errors import DataError
from fer.explain.layers import gradcam_layer
from fer.explain.saliency import attribute, normalize

UPLOAD = "the upload"
SHOWN_PX = 144  # the side of a face's explanation image on the page
VIDEO_FRAMES = 90  # at most this many frames of a video are analysed (evenly spread): the page answers in seconds


def explanation_method(module) -> tuple[str, object | None, str]:
    """Grad-CAM on the last conv layer's rectified maps; plain saliency for a model without conv layers."""
    cam = gradcam_layer(module.net, None)
    if cam is None:
        return "saliency", None, "saliency (the model has no conv layer for Grad-CAM)"
    return "gradcam", cam[1], f"Grad-CAM on {cam[0]}"


def overlay_png(face: np.ndarray, heat: np.ndarray) -> str:
    """The 48×48 face with the [0, 1] map over it in a jet palette, SHOWN_PX square, as a PNG data URL."""
    cv2 = opencv()
    gray = cv2.resize(face, (SHOWN_PX, SHOWN_PX), interpolation=cv2.INTER_CUBIC)
    colored = cv2.applyColorMap(cv2.resize((heat * 255).astype(np.uint8), (SHOWN_PX, SHOWN_PX)), cv2.COLORMAP_JET)
    blend = cv2.addWeighted(cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR), 0.55, colored, 0.45, 0)
    ok, png = cv2.imencode(".png", blend)
    return "data:image/png;base64," + base64.b64encode(png.tobytes()).decode()


def analyse(module, upload: bytes, detect: str, margin: float) -> dict:
    """The faces of an uploaded photo: box, label, probabilities and explanation of each; DataError when the
    upload is no image."""
    try:
        rgb = np.asarray(open_image(io.BytesIO(upload), "a photo (JPEG, PNG, WebP, BMP)").convert("RGB"))
    except DataError as e:
        raise DataError(UPLOAD, e.problem) from None
    faces = find_faces(rgb, detect, margin)
    result = {"width": int(rgb.shape[1]), "height": int(rgb.shape[0]), "faces": []}
    if not faces:
        return result
    pixels = np.stack([f.pixels for f in faces])
    module.eval()
    probs = module.classify(pixels)
    preds = probs.argmax(1)
    method, layer, _ = explanation_method(module)
    x = torch.from_numpy(pixels).float().div(255).unsqueeze(1).to(module.device)
    with torch.inference_mode(False), torch.enable_grad():
        maps = normalize(attribute(module, x, torch.from_numpy(preds), method, gradcam_layer=layer)).cpu().numpy()
    for face, p, best, heat in zip(faces, probs, preds, maps, strict=True):
        result["faces"].append({"box": list(face.box), "label": module.classes[best], "probability": float(p[best]),
                                "probabilities": {c: float(v) for c, v in zip(module.classes, p, strict=True)},
                                "explanation": overlay_png(face.pixels, heat)})
    return result


def is_video(upload: bytes) -> bool:
    return container(upload[:12]) is not None


def analyse_video(module, upload: bytes, detect: str, margin: float) -> dict:
    """A video's faces followed and classified (at most VIDEO_FRAMES frames analysed): its timeline figure and the
    summary per face; DataError when the upload is no video OpenCV can read."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "upload.video"
        path.write_bytes(upload)
        try:
            video = open_video(str(path))
        except DataError as e:
            raise DataError(UPLOAD, e.problem.replace(str(path), "it")) from None
        try:
            every = max(1, math.ceil((video.frames or VIDEO_FRAMES) / VIDEO_FRAMES))
            record = VideoRecord(Path(tmp) / "out", video.fps, (video.width, video.height), module.classes)
            module.eval()
            for _ in follow(video, module, record, every, detect, margin):
                pass
        finally:
            video.close()
        record.close()
        faces = record.finish()
        timeline = base64.b64encode((Path(tmp) / "out" / "timeline.png").read_bytes()).decode()
    return {"video": {"frames": record.frames_written, "analysed": record.frames_analysed, "every": every,
                      "seconds": round(record.frames_written / video.fps, 2), "faces": faces,
                      "timeline": "data:image/png;base64," + timeline}}
