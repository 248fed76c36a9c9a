"""Evaluate SR methods on a folder of HR images: LR by bicubic downscaling or by k-space
truncation (:mod:`core.sr.degrade`), PSNR/SSIM of every method on the same pixels (border
crop = scale), means over the images. Under ``kspace`` the zero-filled (sinc) reference is
evaluated too, so a model's gain can be read against it and against bicubic.

:func:`alpha_curve` measures a GAN generator's perception–distortion trade-off: PSNR/SSIM at
network-interpolation α = 0, 0.2, ..., 1 (α 0 is its PSNR-trained partner), stored in the
card as ``metrics.alpha_curve`` and drawn next to the app's α slider."""
from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from core.progress import Progress, ProgressCallback, null_progress
from core.sr.data import list_images, load_image
from core.sr.degrade import crop_to_multiple, degrade, describe_degradation
from core.sr.metrics import psnr, ssim

__all__ = ["evaluate_folder", "alpha_curve", "ALPHAS", "recommended_alpha", "DEFAULT_ALPHA",
           "default_alpha"]

#: α values of the trade-off curve (ESRGAN's fig. 9 steps through the same range).
ALPHAS = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
#: α used for a GAN model whose card has no trade-off curve (nothing measured to choose by).
DEFAULT_ALPHA = 0.8


def recommended_alpha(curve: Mapping | None) -> float | None:
    """The largest α of a recorded trade-off curve (:func:`alpha_curve`) at which the
    interpolated model beats bicubic on the same validation images in both PSNR and SSIM:
    the sharpest setting that is still measurably more faithful than plain interpolation.
    None when there is no curve or no α beats bicubic in both."""
    if not curve or not curve.get("points") or not curve.get("bicubic"):
        return None
    ref = curve["bicubic"]
    good = [float(p["alpha"]) for p in curve["points"]
            if p["psnr"] > ref["psnr"] and p["ssim"] > ref["ssim"]]
    return max(good) if good else None


def default_alpha(card: Mapping | None) -> tuple[float, str]:
    """``(α, why)`` a GAN model runs at unless the user chooses: its card's
    :func:`recommended_alpha`, else :data:`DEFAULT_ALPHA` (no curve, or no α beating bicubic,
    said in ``why``)."""
    curve = ((card or {}).get("metrics") or {}).get("alpha_curve")
    alpha = recommended_alpha(curve)
    if alpha is not None:
        return alpha, (f"the largest α at which it beats bicubic in both PSNR and SSIM on "
                       f"{curve.get('images', '?')} validation images")
    if curve and curve.get("points"):
        return 0.0, "no α beats bicubic in both PSNR and SSIM on validation: its PSNR model"
    return DEFAULT_ALPHA, "no trade-off curve recorded in its card"


def evaluate_folder(folder: str | Path, scale: int, models: Mapping[str, object], *,
                    tile: int = 0, alpha: float = 1.0, limit: int | None = None,
                    channels: int = 1, progress: ProgressCallback | None = None,
                    degradation: str = "bicubic", window: str | None = None,
                    rician_snr: float | None = None, seed: int = 0) -> dict:
    """``{"scale", "images", "degradation", "methods": {method: {"psnr", "ssim",
    "seconds"}}}``; ``models`` maps method name → an object with ``upscale`` (see
    :mod:`core.sr.upscalers`). Rician noise is drawn from ``seed``."""
    progress = progress or null_progress
    if degradation == "kspace" and "zero_filled" not in models:
        from core.sr.upscalers import load_sr_model

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


def alpha_curve(folder: str | Path, scale: int, model, *, alphas=ALPHAS,
                limit: int | None = None, channels: int = 1,
                progress: ProgressCallback | None = None, degradation: str = "bicubic",
                window: str | None = None, rician_snr: float | None = None,
                seed: int = 0) -> dict:
    """PSNR/SSIM of an interpolated GAN model (:class:`core.sr.upscalers.InterpolatedSR`) at each
    α in ``alphas`` on the HR images of ``folder`` (means; LR made as in
    :func:`evaluate_folder`, untiled), with bicubic on the same pixels as the reference line:
    ``{"points": [{"alpha", "psnr", "ssim"}, ...], "bicubic": {"psnr", "ssim"}, "images",
    "data", "degradation", "method", "version", "psnr_version", "note"}``."""
    from core.sr.degrade import bicubic_upscale

    progress = progress or null_progress
    alphas = [float(a) for a in alphas]
    if not alphas or any(not 0.0 <= a <= 1.0 for a in alphas):
        raise ValueError(f"alphas must be in [0, 1], got {alphas}.")
    rng = np.random.default_rng(seed)
    files = list_images(folder)[:limit]
    sums = {a: {"psnr": [], "ssim": []} for a in alphas}
    ref = {"psnr": [], "ssim": []}
    for i, path in enumerate(files, 1):
        hr = crop_to_multiple(load_image(path, channels), scale)
        lr = degrade(hr, scale, kind=degradation, window=window, rician_snr=rician_snr, rng=rng)
        bic = bicubic_upscale(lr, scale)
        ref["psnr"].append(psnr(hr, bic, crop_border=scale))
        ref["ssim"].append(ssim(hr, bic, crop_border=scale))
        for a in alphas:
            out = model.upscale(lr, tile=0, alpha=a)
            sums[a]["psnr"].append(psnr(hr, out, crop_border=scale))
            sums[a]["ssim"].append(ssim(hr, out, crop_border=scale))
        progress(Progress(task="sr", phase="alpha curve", epoch=1, epochs=1, step=i,
                          steps=len(files), message=path.name))
    mean = lambda v: round(float(np.mean(v)), 4)  # noqa: E731
    curve = {"points": [{"alpha": a, "psnr": mean(d["psnr"]), "ssim": mean(d["ssim"])}
                        for a, d in sums.items()],
             "bicubic": {"psnr": mean(ref["psnr"]), "ssim": mean(ref["ssim"])}}
    return {**curve, "recommended_alpha": recommended_alpha(curve),
            "images": len(files), "data": str(folder),
            "degradation": describe_degradation(degradation, window=window,
                                                rician_snr=rician_snr),
            "method": getattr(model, "method", None), "version": getattr(model, "version", None),
            "psnr_version": getattr(model, "psnr_version", None),
            "note": f"means over the images; α 0 = the PSNR model, 1 = the GAN; border crop "
                    f"{scale} px"}
