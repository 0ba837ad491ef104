"""One image file as fer reads it, for photos and for the image-folder releases alike: upright (its EXIF tag
applied), 8 bits a sample whatever its bit depth, and whatever Pillow cannot read as one DataError naming the file.

Pillow's own `convert("L")` clips 16- and 32-bit gray to 255, so a face in a 16-bit PNG turns white and is
never found: deeper samples are scaled to 8 bits first. A file past Pillow's decompression-bomb limit is refused
before it is decoded, with its size, so that the caller can skip it and go on.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from fer.errors import DataError

WIDE_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")  # gray deeper than 8 bits: integer or float samples


def eight_bit(image: Image.Image) -> Image.Image:
    """`image` with 8-bit samples: 16-bit gray scaled by 255/65535, float gray stretched from its minimum to its
    maximum, 32-bit integers by their maximum; other modes as they are."""
    if image.mode not in WIDE_MODES:
        return image
    samples = np.asarray(image, dtype=np.float64)
    if image.mode == "F":
        low, span = samples.min(), np.ptp(samples)
        scaled = (samples - low) * (255 / span) if span > 0 else np.zeros_like(samples)
    elif image.mode == "I" and samples.max() <= 255:  # 8-bit levels held in 32-bit integers
        scaled = samples
    else:
        scaled = samples * (255 / max(65535.0, samples.max()))
    return Image.fromarray(np.clip(np.rint(scaled), 0, 255).astype(np.uint8), mode="L")


def open_image(path: Path, expected: str) -> Image.Image:
    """The image in `path`, loaded, upright and 8-bit; DataError (naming `expected`) when Pillow cannot read it."""
    try:
        with Image.open(path) as image:
            return eight_bit(ImageOps.exif_transpose(image))
    except Image.DecompressionBombError as e:  # "Image size (N pixels) exceeds limit of M pixels, …"
        pixels, limit = [*map(int, re.findall(r"\d+", str(e))), 0, 0][:2]
        raise DataError(path, f"{pixels:,} pixels, more than Pillow decodes safely ({limit:,}); "
                              "scale it down") from None
    except UnidentifiedImageError:
        raise DataError(path, f"cannot decode image: not an image Pillow can read; expected {expected}") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise DataError(path, f"cannot decode image: damaged ({str(e).splitlines()[0][:120]}); "
                              f"expected {expected}") from None
