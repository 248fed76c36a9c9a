"""Super-resolution: bicubic, SRCNN (Dong et al. 2014), SRResNet and SRGAN (Ledig et al. 2017),
PSNR-oriented RRDBNet and ESRGAN (Wang et al. 2018), the GANs with network interpolation; tiled
inference; PSNR/SSIM comparison; the α trade-off curve (:mod:`core.sr.evaluate`).

Public API::

    SR_METHODS   # core.sr.methods: bicubic, srcnn, srresnet, srgan, rrdb_psnr, esrgan, zero_filled
    available_methods(scale) -> {method: active version or None (bicubic)}   # installed only
    compare(image, *, scale=4, mode="simulate"|"enhance", methods=..., alpha=0.8, tile=None,
            models=None, progress=None, degradation="bicubic"|"kspace", window=None,
            rician_snr=None) -> SRComparison
    bicubic_upscale(image, scale); degrade(hr, scale, *, kind="bicubic"|"kspace", ...)
    core.sr.upscalers.load_sr_model(method, scale, version=None)   # cache it in the app
    core.sr.metrics.psnr / ssim / diff_map

Colour images go through grayscale models on the Y channel (chroma bicubic); see
:mod:`core.sr.upscalers`. TensorFlow is imported only when a model is loaded.
"""
from __future__ import annotations

from pathlib import Path

# Eager on purpose: the submodules ``compare`` and ``degrade`` share their names with the
# functions re-exported here, so the function binding must happen at package import. They are
# light (numpy, Pillow); scikit-image and TensorFlow are imported on first use.
from core.sr.compare import SRComparison, compare
from core.sr.degrade import bicubic_upscale, degrade
from core.sr.methods import GAN_PARTNER, MODEL_METHODS
from core.sr.upscalers import SR_METHODS, load_sr_model, slot_name

__all__ = ["SR_METHODS", "available_methods", "compare", "SRComparison", "bicubic_upscale",
           "degrade", "load_sr_model"]


def available_methods(scale: int, *, weights_dir: Path | str | None = None) -> dict[str, str | None]:
    """Installed methods at ``scale`` → active version (``None`` for bicubic, always present).
    A GAN method (``esrgan``, ``srgan``) is listed only when its PSNR partner can be found too."""
    from core import registry

    out: dict[str, str | None] = {"bicubic": None}
    for method in MODEL_METHODS:
        version = registry.active_version("sr", slot=slot_name(method, scale),
                                          weights_dir=weights_dir)
        if version is None:
            continue
        try:
            card = registry.load_card("sr", version, weights_dir=weights_dir)
        except Exception:  # broken pointer or card: not installed
            continue
        if method in GAN_PARTNER:
            partner = card.get("init_version") or registry.active_version(
                "sr", slot=slot_name(GAN_PARTNER[method], scale), weights_dir=weights_dir)
            if partner is None:
                continue
        out[method] = version
    return out
