"""Preprocessing shared by training and inference; its settings are saved in the model card.

Pipeline (``preprocess``): grayscale -> head mask -> crop to the head's bounding box (drops the
black padding bars the brain-MRI ``notumor`` images carry, a shortcut a model can learn,
see ``../shared/datasets/README.md``) -> resize to the model's input size -> normalise.

``normalise`` modes: ``"vgg16"`` = Keras ``applications.vgg16.preprocess_input`` (caffe: pixels in
0..255, BGR, ImageNet channel means subtracted), grayscale replicated to 3 channels;
``"unit"`` = pixels in [0, 1].
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

__all__ = ["DEFAULT_PREPROCESSING", "HeadBox", "to_gray_uint8", "head_mask", "head_bbox",
           "crop_resize", "normalise", "preprocess", "preprocessing_config", "head_crop_resize",
           "read_gray"]

# ImageNet means in BGR order, as keras.applications.vgg16.preprocess_input subtracts them.
_CAFFE_MEAN_BGR = np.array([103.939, 116.779, 123.68], dtype=np.float32)
_MIN_HEAD_FRACTION = 0.02  # a mask smaller than this is noise: fall back to the whole image

DEFAULT_PREPROCESSING: dict = {
    "head_crop": True,        # crop to the head's bounding box before resizing
    "crop_margin": 0.02,      # extra margin around the box, as a fraction of the image side
    "mask_threshold": 0.5,    # fraction of Otsu's threshold on the blurred image
    "interpolation": "area",  # cv2.INTER_AREA when shrinking, linear when enlarging
    "normalise": "vgg16",
    "channels": 3,
}


@dataclass(frozen=True)
class HeadBox:
    """Crop box in scan pixels, half-open: rows ``y0:y1``, columns ``x0:x1``."""
    x0: int
    y0: int
    x1: int
    y1: int


def preprocessing_config(normalise_mode: str, channels: int, size: int, **overrides) -> dict:
    """The card's ``preprocessing`` dict."""
    cfg = dict(DEFAULT_PREPROCESSING, normalise=normalise_mode, channels=channels, size=[size, size])
    cfg.update(overrides)
    return cfg


def to_gray_uint8(image: np.ndarray) -> np.ndarray:
    """H×W or H×W×3 (uint8, or float in [0, 1]) -> H×W uint8."""
    img = np.asarray(image)
    if img.ndim == 3:
        if img.shape[-1] == 1:
            img = img[..., 0]
        elif img.shape[-1] in (3, 4):
            img = img[..., :3].mean(axis=-1)
        else:
            raise ValueError(f"Expected H×W or H×W×3 image, got shape {img.shape}.")
    elif img.ndim != 2:
        raise ValueError(f"Expected H×W or H×W×3 image, got shape {img.shape}.")
    if img.dtype == np.uint8:
        return img
    if np.issubdtype(img.dtype, np.floating):
        return (np.clip(np.nan_to_num(img), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    img = img.astype(np.float64)
    hi = img.max()
    return (img / hi * 255.0 + 0.5).astype(np.uint8) if hi > 0 else np.zeros(img.shape, np.uint8)


def head_mask(image: np.ndarray, threshold: float = DEFAULT_PREPROCESSING["mask_threshold"]
              ) -> np.ndarray:
    """Boolean H×W foreground (head) mask: Otsu threshold on a blurred image (scaled by
    ``threshold``), largest connected component, holes filled. All True when nothing is found."""
    gray = to_gray_uint8(image)
    h, w = gray.shape
    blur = cv2.GaussianBlur(gray, (0, 0), sigmaX=max(1.0, min(h, w) / 128))
    otsu, _ = cv2.threshold(blur, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    level = max(8.0, otsu * threshold)
    fg = (blur > level).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(fg, connectivity=8)
    if n <= 1:
        return np.ones((h, w), bool)
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    comp = (labels == largest).astype(np.uint8)
    if comp.sum() < _MIN_HEAD_FRACTION * h * w:
        return np.ones((h, w), bool)
    # fill holes: flood the background from a padded border, the rest is the head
    padded = np.pad(comp, 1)
    flood = padded.copy()
    cv2.floodFill(flood, None, (0, 0), 1)
    holes = (flood == 0)[1:-1, 1:-1]
    return comp.astype(bool) | holes


def head_bbox(image: np.ndarray, margin: float = DEFAULT_PREPROCESSING["crop_margin"],
              threshold: float = DEFAULT_PREPROCESSING["mask_threshold"]) -> HeadBox:
    """Bounding box of :func:`head_mask` plus ``margin`` (fraction of the image side)."""
    mask = head_mask(image, threshold)
    h, w = mask.shape
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    m = int(round(margin * max(h, w)))
    return HeadBox(max(0, int(cols[0]) - m), max(0, int(rows[0]) - m),
                   min(w, int(cols[-1]) + 1 + m), min(h, int(rows[-1]) + 1 + m))


def crop_resize(gray: np.ndarray, box: HeadBox | None, size: int) -> np.ndarray:
    """Crop ``gray`` (H×W uint8) to ``box`` (None: whole image) and resize to ``size``²."""
    crop = gray if box is None else gray[box.y0:box.y1, box.x0:box.x1]
    shrink = crop.shape[0] > size or crop.shape[1] > size
    return cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def normalise(batch_u8: np.ndarray, mode: str, channels: int) -> np.ndarray:
    """(N, S, S) uint8 (or float 0..255) -> (N, S, S, channels) float32 model input."""
    x = np.asarray(batch_u8, dtype=np.float32)
    if mode == "vgg16":
        if channels != 3:
            raise ValueError("'vgg16' normalisation needs 3 channels.")
        return x[..., None] - _CAFFE_MEAN_BGR
    if mode == "unit":
        x = x[..., None] / 255.0
        return np.repeat(x, channels, axis=-1) if channels != 1 else x
    raise ValueError(f"Unknown normalisation {mode!r}; expected 'vgg16' or 'unit'.")


def head_crop_resize(image: np.ndarray, config: dict) -> tuple[np.ndarray, HeadBox]:
    """One scan -> ``(S×S uint8 crop of the head, crop box in scan pixels)`` as ``config``
    (a card's ``preprocessing``) says; the whole image when ``head_crop`` is off."""
    gray = to_gray_uint8(image)
    size = int(config["size"][0])
    if config.get("head_crop", True):
        box = head_bbox(gray, config.get("crop_margin", 0.02), config.get("mask_threshold", 0.5))
    else:
        box = HeadBox(0, 0, gray.shape[1], gray.shape[0])
    return crop_resize(gray, box, size), box


def preprocess(image: np.ndarray, config: dict) -> tuple[np.ndarray, HeadBox]:
    """One scan -> ``(model input (S, S, C) float32, crop box in scan pixels)``."""
    small, box = head_crop_resize(image, config)
    return normalise(small[None], config["normalise"], int(config.get("channels", 3)))[0], box


def read_gray(path: str | Path) -> np.ndarray:
    """An image file → H×W uint8 (OpenCV: the training fast path; PNG/JPEG/TIFF/BMP)."""
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise ValueError(f"Could not read image {path}.")
    if img.ndim == 3:
        img = cv2.cvtColor(img[..., :3], cv2.COLOR_BGR2GRAY)
    if img.dtype != np.uint8:
        img = to_gray_uint8(img.astype(np.float64) / max(float(img.max()), 1.0))
    return img
