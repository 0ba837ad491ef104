"""Procedural FER-like faces whose class is decided by the brows, eyes and mouth, with masks of those regions.

Real FER2013 cannot ship with the project, yet tests and demos need data whose labels are learnable from
known image regions (to check training, augmentation and saliency end to end). Each face varies in pose,
lighting and identity, so raw-pixel baselines struggle where a small CNN does not, and every expression
parameter is jittered until neighbouring classes overlap the way real expressions do (Angry~Disgust,
Fear~Surprise, Sad~Neutral).

Rendering maps every output pixel through the inverse of a per-image similarity transform into face
coordinates (face centred at 0, x in about [-1, 1], y in about [-1.2, 1.2], y pointing down) and evaluates
signed distances to soft shapes there, for the whole batch at once; the masks come from the same
distances, so they follow the pose exactly.
"""

from __future__ import annotations

import numpy as np

from fer.data.splits import Split
from fer.labels import EMOTIONS, IMAGE_SIZE

PIXELS_PER_UNIT = 16.0
"""Face units → pixels at scale 1: the head (±1.15 units) fills most of the frame yet, at the largest scale
and shift, the mouth stays inside it."""

MASK_DILATION_PX = 1.5
"""Masks reach this far past each feature's edge, so saliency that lands on a feature's rim still counts."""

_CHUNK = 16
"""Images rendered per pass: small enough that the per-pass float32 temporaries stay in cache (~2x faster)."""

# Expression parameters, one row per class in fer.labels.EMOTIONS order, then FER+'s Contempt. Brow height is
# taken at the brow's middle; a positive slant puts the inner end lower (angry), a negative one raises it (sad,
# fear). A positive mouth curve lifts the corners (smile). A mouth opening of half-height 0 is a closed mouth.
(BROW_Y, BROW_SLANT, BROW_INNER_X, EYE_OPEN, MOUTH_CURVE, MOUTH_HALF_W, LIP_HALF_T, OPEN_HALF_W, OPEN_HALF_H,
 MOUTH_TILT, MOUTH_DY) = range(11)  # fmt: skip
_CLASS_MEANS = np.array(
    [
        # brow_y slant  inner  eye   curve  mw    lip    ow    oh    tilt  dy
        [-0.37, 0.15, 0.10, 0.60, 0.00, 0.30, 0.030, 0.00, 0.00, 0.00, 0.00],  # Angry: pressed thin mouth
        [-0.38, 0.10, 0.12, 0.60, -0.40, 0.30, 0.045, 0.20, 0.06, 0.35, -0.05],  # Disgust: raised upper lip
        [-0.53, -0.10, 0.10, 1.45, 0.00, 0.36, 0.040, 0.30, 0.11, 0.00, 0.03],  # Fear: wide stretched mouth
        [-0.45, 0.00, 0.16, 0.70, 1.50, 0.40, 0.050, 0.00, 0.00, 0.00, 0.00],  # Happy: smile
        [-0.44, -0.13, 0.14, 0.85, -1.40, 0.32, 0.045, 0.00, 0.00, 0.00, 0.02],  # Sad: corners down
        [-0.60, 0.00, 0.16, 1.50, 0.00, 0.17, 0.040, 0.17, 0.22, 0.00, 0.05],  # Surprise: round open mouth
        [-0.43, 0.00, 0.15, 1.00, 0.00, 0.33, 0.045, 0.00, 0.00, 0.00, 0.00],  # Neutral
        [-0.43, 0.05, 0.15, 0.80, 0.55, 0.33, 0.045, 0.00, 0.00, 0.28, 0.00],  # Contempt: one-sided closed smirk
    ],
    dtype=np.float32,
)
_PARAM_ROW = {**{e: i for i, e in enumerate(EMOTIONS)}, "Anger": 0, "Happiness": 3, "Sadness": 4, "Contempt": 7}
"""A class name (FER2013's or FER+'s) → its row of expression parameters."""
_CLASS_JITTER = np.array([0.065, 0.085, 0.04, 0.32, 0.85, 0.06, 0.012, 0.07, 0.06, 0.18, 0.04], np.float32)


def generate(n: int, seed: int, noise: float = 0.06, classes: tuple[str, ...] = EMOTIONS) -> Split:
    """`n` faces labelled in `classes` (their order is the label order), with class-deciding masks,
    byte-identical for the same `(n, seed, classes)`.

    `noise` is the std of Gaussian pixel noise as a fraction of the intensity range; everything else
    (labels, pose, masks) does not depend on it, so the same seed at two noise levels gives the same faces.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if not noise >= 0:
        raise ValueError(f"noise must be >= 0, got {noise}")
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n) % len(classes)).astype(np.int64)
    p = _sample_params(rng, np.array([_PARAM_ROW[c] for c in classes], np.int64)[labels])
    pixel_noise = rng.standard_normal((n, IMAGE_SIZE, IMAGE_SIZE), dtype=np.float32)

    images = np.empty((n, IMAGE_SIZE, IMAGE_SIZE), np.uint8)
    masks = np.empty((n, IMAGE_SIZE, IMAGE_SIZE), bool)
    for start in range(0, n, _CHUNK):
        sl = slice(start, start + _CHUNK)
        img, masks[sl] = _render({k: v[sl] for k, v in p.items()})
        img += np.float32(noise) * pixel_noise[sl]
        images[sl] = np.rint(np.clip(img, 0.0, 1.0) * 255.0).astype(np.uint8)
    return Split(images=images, labels=labels, rows=np.arange(1, n + 1), masks=masks)


def _sample_params(rng: np.random.Generator, expression: np.ndarray) -> dict[str, np.ndarray]:
    """Per-image pose, lighting, identity and jittered `expression` (rows of _CLASS_MEANS), each shaped
    (n, 1, 1) to broadcast."""
    n = len(expression)
    f32 = np.float32

    def u(lo, hi):
        return rng.uniform(lo, hi, n).astype(f32)

    def g(mean, std):
        return (mean + std * rng.standard_normal(n)).astype(f32)

    expr = _CLASS_MEANS[expression] + _CLASS_JITTER * rng.standard_normal((n, len(_CLASS_JITTER))).astype(f32)
    shut = _CLASS_MEANS[expression, OPEN_HALF_H] == 0  # closed-mouth classes stay closed whatever the jitter
    expr[shut, OPEN_HALF_H] = 0.0
    mouth_w = np.maximum(expr[:, MOUTH_HALF_W], 0.1)
    corner = 0.2  # the most the mouth corners may rise or drop, so they stay on the face
    side = np.where(rng.random(n) < 0.5, f32(-1), f32(1))
    p = {
        "angle": np.deg2rad(u(-12, 12)),
        "scale": u(0.85, 1.15),
        "tx": u(-3, 3),
        "ty": u(-3, 3),
        "softness": u(1.0, 2.0),
        "background": u(0.05, 0.45),
        "grad_x": g(0, 0.08),
        "grad_y": g(0, 0.08),
        "skin": u(0.55, 0.9),
        "hair": u(0.05, 0.4),
        "hairline": g(-0.72, 0.08),
        "face_w": g(0.92, 0.04),
        "face_h": g(1.15, 0.04),
        "eye_x": g(0.36, 0.025),
        "eye_y": g(-0.12, 0.025),
        "eye_w": g(0.16, 0.015),
        "mouth_y": g(0.52, 0.035),
        "feature_dark": u(0.1, 0.3),
        "contrast": u(0.7, 1.3),
        "brightness": g(0, 0.07),
        "brow_y": expr[:, BROW_Y],
        "brow_slant": expr[:, BROW_SLANT],
        "brow_inner": np.maximum(expr[:, BROW_INNER_X], 0.04),
        "eye_open": np.maximum(expr[:, EYE_OPEN], 0.3),
        "mouth_w": mouth_w,
        "curve": np.clip(expr[:, MOUTH_CURVE], -corner / mouth_w**2, corner / mouth_w**2),
        "lip_t": np.maximum(expr[:, LIP_HALF_T], 0.02),
        "open_w": np.maximum(expr[:, OPEN_HALF_W], 0.08),
        "open_h": np.clip(expr[:, OPEN_HALF_H], 0.0, 0.3),
        "tilt": np.clip(expr[:, MOUTH_TILT], -0.3, 0.3) * side,
        "mouth_dy": expr[:, MOUTH_DY],
    }
    return {k: v.reshape(n, 1, 1) for k, v in p.items()}


def _render(p: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Float images in [0, 1]-ish (before noise and clipping) and boolean masks for one chunk."""
    c = (IMAGE_SIZE - 1) / 2
    grid = np.arange(IMAGE_SIZE, dtype=np.float32) - np.float32(c)
    gx, gy = grid[None, None, :], grid[None, :, None]
    ppu = PIXELS_PER_UNIT * p["scale"]
    cos, sin = np.cos(p["angle"]), np.sin(p["angle"])
    dx, dy = (gx - p["tx"]) / ppu, (gy - p["ty"]) / ppu
    x = cos * dx + sin * dy
    y = -sin * dx + cos * dy
    ax = np.abs(x)  # eyes and brows are mirror images, so one distance covers both sides
    pixel = 1.0 / ppu  # one output pixel, in face units
    ramp = p["softness"] * pixel
    reach = np.float32(MASK_DILATION_PX) * pixel

    def alpha(d):
        return np.clip(0.5 - d / ramp, 0.0, 1.0)

    def paint(img, d, value, strength=1.0):
        a = alpha(d) * strength
        return img + a * (value - img)

    img = p["background"] + p["grad_x"] * gx / c + p["grad_y"] * gy / c + np.zeros_like(x)
    head = _ellipse(x, y, 0.0, 0.0, p["face_w"], p["face_h"])
    img = paint(img, head, p["skin"])
    img = paint(img, np.maximum(head, y - p["hairline"] - 0.1 * x * x), p["hair"])
    shade = p["skin"] * 0.8
    img = paint(img, _segment(x, y, 0.0, 0.05, 0.03, 0.3, 0.035), shade, 0.6)

    dark = p["feature_dark"]
    half_slant = p["brow_slant"] / 2
    inner = (p["brow_inner"], p["brow_y"] + half_slant)
    outer = (p["eye_x"] + p["eye_w"] + 0.05, p["brow_y"] - half_slant)
    brows = _segment(ax, y, *inner, *outer, 0.055)
    img = paint(img, brows, dark + 0.1)
    eyes = _ellipse(ax, y, p["eye_x"], p["eye_y"], p["eye_w"], 0.09 * p["eye_open"])
    img = paint(img, eyes, dark)

    my = p["mouth_y"] + p["mouth_dy"]
    lips = _curve(x, y, my, p["curve"], p["tilt"], p["mouth_w"], p["lip_t"])
    img = paint(img, lips, p["skin"] * 0.45)
    # A tilted (disgust) mouth opens under its raised side.
    opening = _ellipse(x, y, -0.2 * p["tilt"], my, p["open_w"], p["open_h"] + 1e-3)
    is_open = np.clip((p["open_h"] - 0.015) / 0.03, 0.0, 1.0)
    img = paint(img, opening, np.float32(0.03), is_open)

    img = (img - 0.5) * p["contrast"] + 0.5 + p["brightness"]
    mask = (brows < reach) | (eyes < reach) | (lips < reach) | ((opening < reach) & (is_open > 0))
    return img, mask


def _ellipse(x, y, cx, cy, a, b):
    """Approximate signed distance to an axis-aligned ellipse.

    First order (level-set value over its gradient), floored by the distance to the bounding box: the
    first-order value alone collapses to the distance from the major axis's whole line for thin ellipses.
    """
    rx, ry = x - cx, y - cy
    ia, ib = 1.0 / a, 1.0 / b
    ex, ey = rx * ia, ry * ib
    k = np.sqrt(ex * ex + ey * ey)
    ex *= ia
    ey *= ib
    d = (k - 1.0) * k / np.maximum(np.sqrt(ex * ex + ey * ey), 1e-6)
    box = np.maximum(np.abs(rx) - a, np.abs(ry) - b)
    return np.maximum(d, box, out=d)


def _segment(x, y, x0, y0, x1, y1, half_thickness):
    """Signed distance to a thick line segment (a capsule)."""
    vx, vy = x1 - x0, y1 - y0
    wx, wy = x - x0, y - y0
    t = np.clip((wx * vx + wy * vy) / (vx * vx + vy * vy), 0.0, 1.0)
    ex, ey = wx - t * vx, wy - t * vy
    return np.sqrt(ex * ex + ey * ey) - half_thickness


def _curve(x, y, y0, curve, tilt, half_width, half_thickness):
    """Signed distance to the thick mouth curve y = y0 + tilt·x − curve·x² over |x| ≤ half_width.

    The vertical offset is divided by the curve's local stretch, which is accurate for gentle slopes; past
    the ends the distance grows from the end point.
    """
    xc = np.clip(x, -half_width, half_width)
    off = (y - (y0 + tilt * xc - curve * xc * xc)) / np.sqrt(1.0 + (tilt - 2.0 * curve * xc) ** 2)
    past = np.maximum(np.abs(x) - half_width, 0.0)
    return np.sqrt(past * past + off * off) - half_thickness
