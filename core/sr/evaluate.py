"""Evaluate SR methods on a folder of HR images: LR by bicubic downscaling or by k-space
truncation (:mod:`core.sr.degrade`), PSNR/SSIM of every method on the same pixels (border
crop = scale), means over the images. Under ``kspace`` the zero-filled (sinc) reference is
evaluated too, so a model's gain can be read against it and against bicubic."""
from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from core.progress import Progress, ProgressCallback, null_progress
from core.sr.data import list_images, load_image
from core.sr.degrade import crop_to_multiple, degrade, describe_degradation
from core.sr.metrics import psnr, ssim

__all__ = ["evaluate_folder"]


def evaluate_folder(folder: str | Path, scale: int, models: Mapping[str, object], *,
                    tile: int = 0, alpha: float = 1.0, limit: int | None = None,
                    channels: int = 1, progress: ProgressCallback | None = None,
                    degradation: str = "bicubic", window: str | None = None,
                    rician_snr: float | None = None, seed: int = 0) -> dict:
    """``{"scale", "images", "degradation", "methods": {method: {"psnr", "ssim",
    "seconds"}}}``; ``models`` maps method name → an object with ``upscale`` (see
    :mod:`core.sr.models`). Rician noise is drawn from ``seed``."""
    progress = progress or null_progress
    if degradation == "kspace" and "zero_filled" not in models:
        from core.sr.models import load_sr_model

        models = {**models, "zero_filled": load_sr_model("zero_filled", scale)}
    rng = np.random.default_rng(seed)
    files = list_images(folder)[:limit]
    sums = {m: {"psnr": [], "ssim": [], "seconds": []} for m in models}
    for i, path in enumerate(files, 1):
        hr = crop_to_multiple(load_image(path, channels), scale)
        lr = degrade(hr, scale, kind=degradation, window=window, rician_snr=rician_snr,
                     rng=rng)
        for method, model in models.items():
            t = time.perf_counter()
            out = model.upscale(lr, tile=tile, alpha=alpha)
            sums[method]["seconds"].append(time.perf_counter() - t)
            sums[method]["psnr"].append(psnr(hr, out, crop_border=scale))
            sums[method]["ssim"].append(ssim(hr, out, crop_border=scale))
        progress(Progress(task="sr", phase="evaluate", epoch=1, epochs=1, step=i,
                          steps=len(files), message=path.name))
    methods = {m: {k: float(np.mean(v)) for k, v in d.items()} for m, d in sums.items()}
    return {"scale": int(scale), "images": len(files),
            "degradation": {"kind": degradation, "window": window, "rician_snr": rician_snr,
                            "text": describe_degradation(degradation, window=window,
                                                         rician_snr=rician_snr)},
            "methods": methods}
