"""Degradation model (HR → LR) and the bicubic reference upscaler.

Bicubic resampling is Pillow's (Keys kernel a = -0.5, widened by the scale factor when
downscaling, i.e. anti-aliased like MATLAB's ``imresize``, which SR papers use to make LR data).
Images are float32 in [0, 1], ``H×W`` or ``H×W×C``; every function here is pure numpy/Pillow.
"""
from __future__ import annotations

import numpy as np
from PIL import Image

__all__ = ["resize_bicubic", "bicubic_upscale", "degrade", "crop_to_multiple", "as_float01"]


def as_float01(image: np.ndarray) -> np.ndarray:
    """uint8/uint16 → float32 [0, 1]; float input is clipped to [0, 1]."""
    arr = np.asarray(image)
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / 255.0
    if arr.dtype == np.uint16:
        return arr.astype(np.float32) / 65535.0
    return np.clip(arr.astype(np.float32), 0.0, 1.0)


def _resize_channel(ch: np.ndarray, size_wh: tuple[int, int]) -> np.ndarray:
    return np.asarray(Image.fromarray(np.ascontiguousarray(ch, dtype=np.float32), mode="F")
                      .resize(size_wh, Image.Resampling.BICUBIC), dtype=np.float32)


def resize_bicubic(image: np.ndarray, height: int, width: int, *, clip: bool = True) -> np.ndarray:
    """Bicubic resize of an ``H×W`` or ``H×W×C`` float image to ``height×width``."""
    img = np.asarray(image, dtype=np.float32)
    size = (int(width), int(height))
    if img.ndim == 2:
        out = _resize_channel(img, size)
    elif img.ndim == 3:
        out = np.stack([_resize_channel(img[..., c], size) for c in range(img.shape[2])], axis=-1)
    else:
        raise ValueError(f"expected an H×W or H×W×C image, got shape {img.shape}")
    return np.clip(out, 0.0, 1.0) if clip else out


def bicubic_upscale(image: np.ndarray, scale: int) -> np.ndarray:
    """The reference every comparison shows: bicubic upscaling by an integer ``scale``."""
    h, w = np.asarray(image).shape[:2]
    return resize_bicubic(image, h * scale, w * scale)


def crop_to_multiple(image: np.ndarray, scale: int) -> np.ndarray:
    """Crop the bottom/right edge so that height and width are multiples of ``scale``."""
    h, w = image.shape[:2]
    return image[: h - h % scale, : w - w % scale]


def degrade(hr: np.ndarray, scale: int, *, blur_sigma: float = 0.0, noise_sigma: float = 0.0,
            rng: np.random.Generator | None = None) -> np.ndarray:
    """Make a low-resolution image from ``hr``: optional Gaussian blur (``blur_sigma`` in HR
    pixels), bicubic downscaling by ``scale``, optional additive Gaussian noise (``noise_sigma``
    on the [0, 1] scale), clipped to [0, 1]. ``hr`` must have sides divisible by ``scale``
    (see :func:`crop_to_multiple`). The default is the plain bicubic degradation of the SR
    literature."""
    img = np.asarray(hr, dtype=np.float32)
    h, w = img.shape[:2]
    if h % scale or w % scale:
        raise ValueError(f"HR size {h}×{w} is not divisible by scale {scale}; crop it first.")
    if blur_sigma > 0:
        import cv2

        img = cv2.GaussianBlur(img, (0, 0), sigmaX=float(blur_sigma),
                               borderType=cv2.BORDER_REFLECT_101)
    lr = resize_bicubic(img, h // scale, w // scale, clip=False)
    if noise_sigma > 0:
        rng = rng if rng is not None else np.random.default_rng()
        lr = lr + rng.normal(0.0, noise_sigma, lr.shape).astype(np.float32)
    return np.clip(lr, 0.0, 1.0).astype(np.float32)
