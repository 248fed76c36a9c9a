"""Display pixels out of the app: float [0, 1] → uint8, PNG bytes and PNG files.

One implementation for everything that writes what the app shows (``convert``, ``gradcam``,
``super-resolve`` and the app's downloads), so all round the same way.
"""
from __future__ import annotations

import os

import numpy as np

from core.errors import ScanError

__all__ = ["IMAGE_SUFFIXES", "to_uint8", "png_bytes", "write_png", "thumbnail_png", "THUMBNAIL_PX"]

#: Longer side of a stored thumbnail (scan records, case library).
THUMBNAIL_PX = 128

#: File suffixes of plain image files in training / evaluation folders (DICOM folders are
#: loaded through :func:`core.imaging.load_scan` instead).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")


def to_uint8(image: np.ndarray) -> np.ndarray:
    """float in [0, 1] → uint8 as round(clip(x) × 255); uint8 passes through. Same layout."""
    img = np.asarray(image)
    if img.dtype == np.uint8:
        return img
    return np.rint(np.clip(img, 0.0, 1.0) * 255.0).astype(np.uint8)


def png_bytes(image: np.ndarray) -> bytes:
    """PNG file bytes of an H×W grey or H×W×3 RGB image (float [0, 1] or uint8)."""
    import cv2

    img = to_uint8(image)
    if img.ndim == 3 and img.shape[2] == 3:
        img = cv2.cvtColor(img, cv2.COLOR_RGB2BGR)  # cv2 encodes BGR
    ok, buf = cv2.imencode(".png", img)
    if not ok:  # pragma: no cover - cv2 only fails on invalid shapes
        raise ValueError(f"Cannot encode an image of shape {img.shape} as PNG.")
    return buf.tobytes()


def write_png(path: str | os.PathLike, image: np.ndarray) -> None:
    """Write ``image`` as a PNG file; ``ScanError(code="write_error")`` names the path on failure."""
    data = png_bytes(image)
    try:
        with open(path, "wb") as fh:
            fh.write(data)
    except OSError as err:
        raise ScanError(f"Cannot write {os.fspath(path)}: {err.strerror or err}.",
                        code="write_error") from None


def thumbnail_png(image: np.ndarray, max_px: int = THUMBNAIL_PX) -> bytes:
    """PNG bytes of ``image`` (grey or RGB, float [0, 1] or uint8) shrunk so its longer side is
    at most ``max_px`` (area averaging; never enlarged). Pixels only: no metadata."""
    import cv2

    img = to_uint8(image)
    h, w = img.shape[:2]
    if max(h, w) > max_px:
        f = max_px / max(h, w)
        img = cv2.resize(img, (max(1, round(w * f)), max(1, round(h * f))),
                         interpolation=cv2.INTER_AREA)
    return png_bytes(img)
