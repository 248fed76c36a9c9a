"""Side-by-side comparison of SR methods on one image, the function the app calls.

Modes:

* ``"simulate"``: the upload is the ground truth. It is cropped to a multiple of ``scale``,
  bicubic-downscaled to make the LR input, every method upscales that LR image, and PSNR/SSIM
  (border crop = scale) and ``|output − hr|`` maps are computed against the upload on the same
  pixels.
* ``"enhance"``: the upload itself is the LR input and is upscaled as it is. There is no ground
  truth, so ``metrics`` and ``diff_maps`` are ``None`` and ``metrics_note`` says why.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from core.errors import MedScanError
from core.progress import Progress
from core.sr.degrade import as_float01, crop_to_multiple, degrade, describe_degradation
from core.sr.metrics import diff_map, psnr, ssim
from core.sr.upscalers import SR_METHODS, load_sr_model
from core.sr.tiling import check_tile

__all__ = ["SRComparison", "compare", "ENHANCE_NOTE", "MAX_INPUT_PIXELS"]

ENHANCE_NOTE = ("PSNR/SSIM not applicable in enhance mode: the upload is upscaled as it is, so "
                "there is no higher-resolution ground truth to compare with. Use simulate mode "
                "to measure.")
# LR inputs larger than this (pixels) are refused: x4 output would be 16× larger in memory.
MAX_INPUT_PIXELS = 4096 * 4096


@dataclass
class SRComparison:
    mode: str
    scale: int
    lr: np.ndarray                       # the low-resolution input, float32 [0, 1]
    hr: np.ndarray | None                # ground truth (simulate) or None (enhance)
    outputs: dict[str, np.ndarray] = field(default_factory=dict)
    metrics: dict[str, dict[str, float]] | None = None
    metrics_note: str | None = None
    diff_maps: dict[str, np.ndarray] | None = None
    versions: dict[str, str | None] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    degradation: str | None = None       # simulate: how the LR input was made, in words


def compare(image: np.ndarray, *, scale: int = 4, mode: str = "simulate",
            methods: Sequence[str] = ("bicubic", "rrdb_psnr"), alpha: float = 0.8,
            tile: int | None = None, models: Mapping | None = None,
            progress: Callable[[Progress], None] | None = None, degradation: str = "bicubic",
            window: str | None = None, rician_snr: float | None = None) -> SRComparison:
    """Run ``methods`` on ``image`` (H×W or H×W×3; float [0, 1] or uint8/uint16) and compare.

    ``models`` maps method → a loaded model (:func:`core.sr.upscalers.load_sr_model`, cached by
    the app); missing ones are loaded from the registry. ``alpha`` is the network
    interpolation of the GAN methods (1 = pure GAN, 0 = PSNR model). ``tile`` (LR px, 0 =
    untiled, ``None`` = from the memory budget ``MEDSCAN_SR_MEMORY_MB``) bounds memory; tiled
    output equals untiled output (:mod:`core.sr.tiling`).
    ``degradation`` (simulate mode): how the low-resolution input is made, ``"bicubic"`` or
    ``"kspace"`` (MRI k-space truncation, with ``window`` and optional Rician noise at
    ``rician_snr``; see :mod:`core.sr.degrade`); with ``"kspace"`` the zero-filled (sinc)
    reference is added after bicubic. Rician noise is seeded by the image, so a rerun is the
    same comparison.
    """
    if mode not in ("simulate", "enhance"):
        raise MedScanError(f"mode must be 'simulate' or 'enhance', got {mode!r}.")
    if scale not in (2, 4):
        raise MedScanError(f"scale must be 2 or 4, got {scale!r}.")
    check_tile(tile)
    unknown = [m for m in methods if m not in SR_METHODS]
    if unknown:
        raise MedScanError(f"Unknown SR method(s) {unknown}; choose from {', '.join(SR_METHODS)}.")
    img = as_float01(image)
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[..., 0]
    if img.ndim not in (2, 3) or (img.ndim == 3 and img.shape[2] != 3):
        raise MedScanError(f"Expected a grayscale or RGB image, got shape {img.shape}.")
    if mode == "simulate":
        hr = crop_to_multiple(img, scale)
        if min(hr.shape[:2]) < 4 * scale:
            raise MedScanError(f"Image {img.shape[1]}×{img.shape[0]} is too small to simulate ×{scale}.")
        if degradation == "kspace" and "zero_filled" not in methods:
            methods = (*methods[:1], "zero_filled", *methods[1:])
        rng = np.random.default_rng(int(hr.size) + int(hr.sum() * 1000) % 2**31)
        try:
            lr = degrade(hr, scale, kind=degradation, window=window, rician_snr=rician_snr,
                         rng=rng)
        except ValueError as err:
            raise MedScanError(str(err)) from None
        result_degradation = describe_degradation(degradation, window=window,
                                                  rician_snr=rician_snr)
    else:
        hr, lr, result_degradation = None, img, None
    if lr.shape[0] * lr.shape[1] > MAX_INPUT_PIXELS:
        raise MedScanError(f"Image {lr.shape[1]}×{lr.shape[0]} is too large to super-resolve "
                           f"(limit {MAX_INPUT_PIXELS} input pixels).")
    models = dict(models or {})
    result = SRComparison(mode=mode, scale=scale, lr=lr, hr=hr, degradation=result_degradation)
    if hr is not None:
        result.metrics, result.diff_maps = {}, {}
    else:
        result.metrics_note = ENHANCE_NOTE
    for i, method in enumerate(methods, 1):
        model = models.get(method) or load_sr_model(method, scale)
        t = time.perf_counter()
        out = model.upscale(lr, tile=tile, alpha=alpha)
        result.seconds[method] = time.perf_counter() - t
        result.outputs[method] = out
        result.versions[method] = getattr(model, "version", None)
        if hr is not None:
            result.metrics[method] = {"psnr": psnr(hr, out, crop_border=scale),
                                      "ssim": ssim(hr, out, crop_border=scale)}
            result.diff_maps[method] = diff_map(hr, out)
        if progress:
            progress(Progress(task="sr", phase="compare", epoch=1, epochs=1, step=i,
                              steps=len(methods), message=method))
    return result
