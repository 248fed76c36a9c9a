"""Image-quality metrics for super-resolution: thin, documented wrappers over scikit-image.

Contract (the BasicSR ``metrics/psnr_ssim.py`` conventions):

* ``reference`` and ``output`` are float arrays in [0, 1] (``data_range=1.0``) of equal shape,
  ``H×W`` or ``H×W×C``; a shape mismatch raises ``ValueError``.
* ``crop_border`` pixels are removed from every side before measuring (SR papers crop ``scale``
  pixels, where upscalers are least constrained); pass the scale.
* Colour images are measured over all channels (no Y conversion).
* Identical images give ``psnr == inf`` and ``ssim == 1.0``.
* SSIM uses Wang et al. 2004's setting (Gaussian window σ = 1.5, population covariance), as
  scikit-image documents for reproducing the paper.
"""
from __future__ import annotations

import numpy as np

__all__ = ["psnr", "ssim", "diff_map", "DATA_RANGE"]

DATA_RANGE = 1.0  # images are float in [0, 1]


def _prepare(reference: np.ndarray, output: np.ndarray, crop_border: int):
    ref = np.asarray(reference, dtype=np.float64)
    out = np.asarray(output, dtype=np.float64)
    if ref.shape != out.shape:
        raise ValueError(f"reference and output shapes differ: {ref.shape} vs {out.shape}")
    if ref.ndim not in (2, 3):
        raise ValueError(f"expected H×W or H×W×C images, got shape {ref.shape}")
    if crop_border:
        c = int(crop_border)
        ref, out = ref[c:-c, c:-c], out[c:-c, c:-c]
        if ref.size == 0:
            raise ValueError(f"crop_border {c} leaves no pixels of a {reference.shape} image")
    return ref, out


def psnr(reference: np.ndarray, output: np.ndarray, *, crop_border: int = 0) -> float:
    """Peak signal-to-noise ratio in dB (``skimage.metrics.peak_signal_noise_ratio``)."""
    from skimage.metrics import peak_signal_noise_ratio  # lazy: keeps CLI start-up fast

    ref, out = _prepare(reference, output, crop_border)
    if np.array_equal(ref, out):
        return float("inf")
    return float(peak_signal_noise_ratio(ref, out, data_range=DATA_RANGE))


def ssim(reference: np.ndarray, output: np.ndarray, *, crop_border: int = 0) -> float:
    """Structural similarity (``skimage.metrics.structural_similarity``), Gaussian-weighted."""
    from skimage.metrics import structural_similarity

    ref, out = _prepare(reference, output, crop_border)
    if np.array_equal(ref, out):
        return 1.0
    return float(structural_similarity(
        ref, out, data_range=DATA_RANGE, gaussian_weights=True, sigma=1.5,
        use_sample_covariance=False, channel_axis=-1 if ref.ndim == 3 else None))


def diff_map(reference: np.ndarray, output: np.ndarray) -> np.ndarray:
    """``|output − reference|`` as float32 (channels averaged to ``H×W``): where a model invents
    or loses detail."""
    ref = np.asarray(reference, dtype=np.float32)
    out = np.asarray(output, dtype=np.float32)
    if ref.shape != out.shape:
        raise ValueError(f"reference and output shapes differ: {ref.shape} vs {out.shape}")
    d = np.abs(out - ref)
    return d.mean(axis=-1) if d.ndim == 3 else d
