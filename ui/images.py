"""Small image helpers for display and download (uint8 conversion, PNG bytes, box drawing,
thumbnails)."""
from __future__ import annotations

import hashlib

import cv2
import numpy as np

from core.imaging.export import THUMBNAIL_PX, png_bytes, thumbnail_png, to_uint8

__all__ = ["sha256_hex", "to_uint8", "to_rgb", "png_bytes", "draw_box", "fit_to",
           "thumbnail_png", "THUMBNAIL_PX"]


def sha256_hex(data: bytes) -> str:
    """The upload's content hash: the key every cached result is stored under."""
    return hashlib.sha256(data).hexdigest()


def to_rgb(image: np.ndarray) -> np.ndarray:
    """H×W or H×W×1 or H×W×3 -> H×W×3 uint8."""
    img = to_uint8(image)
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[..., 0]
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    return img


def draw_box(rgb: np.ndarray, box: tuple[int, int, int, int] | None,
             colour: tuple[int, int, int] = (0, 255, 0)) -> np.ndarray:
    """A copy of ``rgb`` with the half-open box (x0, y0, x1, y1) outlined on it."""
    out = to_rgb(rgb).copy()
    if box is None:
        return out
    x0, y0, x1, y1 = (int(v) for v in box)
    thickness = max(1, round(max(out.shape[:2]) / 200))
    cv2.rectangle(out, (x0, y0), (max(x1 - 1, x0), max(y1 - 1, y0)), colour, thickness)
    return out


def fit_to(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Resize to (H, W) with nearest-neighbour (shows the real pixels, no smoothing)."""
    h, w = shape
    if image.shape[:2] == (h, w):
        return image
    return cv2.resize(image, (w, h), interpolation=cv2.INTER_NEAREST)
