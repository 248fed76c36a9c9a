"""Loaded super-resolution models behind one small interface, plus network interpolation.

``load_sr_model(method, scale, version=None)`` returns an object with ``method``, ``scale``,
``version``, ``card`` and ``upscale(image, *, tile, overlap, alpha, on_tile)``; the app caches it
(``st.cache_resource``) and passes it to :func:`core.sr.compare` through ``models=``.

Colour: the shipped models are grayscale. A colour (H×W×3) image given to a grayscale model is
converted to YCbCr (ITU-R BT.601); the model super-resolves Y and Cb/Cr are upscaled bicubically
(the usual SR practice: detail lives in luminance, and it costs one model call, not three).

Network interpolation (Wang et al. 2018, ESRGAN sec. 3.4): ``θ = (1 − α)·θ_PSNR + α·θ_GAN``.
``alpha=1`` is the pure ESRGAN generator, ``alpha=0`` the PSNR-oriented model it was fine-tuned
from. Both weight lists stay cached as numpy arrays, so a new alpha costs one ``set_weights``.
"""
from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from core.errors import MedScanError, ModelCardError, ModelNotFoundError
from core.sr.degrade import bicubic_upscale, zero_filled_upscale
from core.sr.tiling import DEFAULT_OVERLAP, DEFAULT_TILE, upscale_tiled

__all__ = ["SR_METHODS", "METHOD_LABELS", "MODEL_METHODS", "ARCHITECTURE_BY_METHOD", "slot_name",
           "load_sr_model", "BicubicSR", "KerasSR", "InterpolatedSR", "interpolate_weights",
           "rgb_to_ycbcr", "ycbcr_to_rgb"]

# The table of SR methods lives in core.sr.methods (no imports, so core.db can label rated views
# without importing the model code); re-exported here for the existing callers.
from core.sr.methods import (ARCHITECTURE_BY_METHOD, METHOD_LABELS, MODEL_METHODS,  # noqa: E402
                             SR_METHODS, slot_name)


def rgb_to_ycbcr(rgb: np.ndarray) -> np.ndarray:
    """BT.601 full-range, float [0, 1] in and out (Cb, Cr centred on 0.5)."""
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    y = 0.299 * r + 0.587 * g + 0.114 * b
    cb = 0.5 + (b - y) * 0.564
    cr = 0.5 + (r - y) * 0.713
    return np.stack([y, cb, cr], axis=-1).astype(np.float32)


def ycbcr_to_rgb(ycc: np.ndarray) -> np.ndarray:
    y, cb, cr = ycc[..., 0], ycc[..., 1] - 0.5, ycc[..., 2] - 0.5
    r = y + 1.403 * cr
    b = y + 1.773 * cb
    g = (y - 0.299 * r - 0.114 * b) / 0.587
    return np.clip(np.stack([r, g, b], axis=-1), 0.0, 1.0).astype(np.float32)


def interpolate_weights(psnr_weights: Sequence[np.ndarray], gan_weights: Sequence[np.ndarray],
                        alpha: float) -> list[np.ndarray]:
    """``(1 − alpha)·psnr + alpha·gan`` per array; alpha in [0, 1]; at 0/1 returns the source."""
    alpha = float(alpha)
    if not 0.0 <= alpha <= 1.0:
        raise MedScanError(f"alpha must be in [0, 1], got {alpha}.")
    if len(psnr_weights) != len(gan_weights) or any(
            a.shape != b.shape for a, b in zip(psnr_weights, gan_weights)):
        raise ModelCardError("PSNR and GAN generators have different architectures; "
                             "they cannot be interpolated.")
    if alpha == 0.0:
        return [np.array(a) for a in psnr_weights]
    if alpha == 1.0:
        return [np.array(b) for b in gan_weights]
    return [((1.0 - alpha) * a + alpha * b).astype(a.dtype) for a, b in zip(psnr_weights, gan_weights)]


class BicubicSR:
    """The reference upscaler, same interface as the learned models."""

    method, version, card = "bicubic", None, None

    def __init__(self, scale: int) -> None:
        self.scale = int(scale)

    def upscale(self, image: np.ndarray, **_) -> np.ndarray:
        return bicubic_upscale(image, self.scale)


class ZeroFilledSR(BicubicSR):
    """Zero-filled k-space (sinc) interpolation: the reference under k-space degradation."""

    method = "zero_filled"

    def upscale(self, image: np.ndarray, **_) -> np.ndarray:
        return zero_filled_upscale(image, self.scale)


def _compiled_predict(model) -> Callable[[np.ndarray], np.ndarray]:
    import keras

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        # concrete shapes per trace: UpSampling2D(bicubic) needs static sizes; tiles share one
        fn = tf.function(lambda x: model(x, training=False))
        return lambda x: fn(tf.convert_to_tensor(x, tf.float32)).numpy()
    return lambda x: keras.ops.convert_to_numpy(model(x, training=False))


class KerasSR:
    """A registry model (SRCNN or RRDBNet) that maps LR → HR."""

    def __init__(self, model, card: dict, method: str) -> None:
        self.model, self.card, self.method = model, card, method
        self.version = card.get("version")
        self.scale = int(card["scale"])
        self.channels = int(card["network"].get("num_in_ch", 1))
        self._predict = _compiled_predict(model)

    def _run(self, lr: np.ndarray, tile: int, overlap: int, on_tile) -> np.ndarray:
        return upscale_tiled(self._predict, lr, self.scale, tile=tile, overlap=overlap,
                             on_tile=on_tile)

    def upscale(self, image: np.ndarray, *, tile: int = DEFAULT_TILE,
                overlap: int = DEFAULT_OVERLAP, on_tile=None, **_) -> np.ndarray:
        """``image`` H×W or H×W×3 float [0, 1] → upscaled, same layout, clipped to [0, 1]."""
        img = np.asarray(image, dtype=np.float32)
        if img.ndim == 2:
            if self.channels == 3:
                out = self._run(np.repeat(img[..., None], 3, -1), tile, overlap, on_tile).mean(-1)
            else:
                out = self._run(img[..., None], tile, overlap, on_tile)[..., 0]
        elif img.ndim == 3 and img.shape[2] == 3:
            if self.channels == 3:
                out = self._run(img, tile, overlap, on_tile)
            else:  # grayscale model: super-resolve luminance, chroma bicubic
                ycc = rgb_to_ycbcr(img)
                y = self._run(ycc[..., :1], tile, overlap, on_tile)[..., 0]
                chroma = bicubic_upscale(ycc[..., 1:], self.scale)
                return ycbcr_to_rgb(np.concatenate([np.clip(y, 0, 1)[..., None], chroma], -1))
        elif img.ndim == 3 and img.shape[2] == 1:
            return self.upscale(img[..., 0], tile=tile, overlap=overlap, on_tile=on_tile)[..., None]
        else:
            raise MedScanError(f"Cannot super-resolve an image of shape {img.shape}.")
        return np.clip(out, 0.0, 1.0).astype(np.float32)


class InterpolatedSR(KerasSR):
    """ESRGAN generator with network interpolation towards its PSNR-oriented initialisation."""

    def __init__(self, model, card: dict, psnr_weights: list[np.ndarray],
                 psnr_version: str | None) -> None:
        super().__init__(model, card, "esrgan")
        self.gan_weights = [np.array(w) for w in model.get_weights()]
        self.psnr_weights = psnr_weights
        self.psnr_version = psnr_version
        interpolate_weights(psnr_weights, self.gan_weights, 1.0)  # checks shapes now
        self.alpha = 1.0
        # The app shares one cached instance between sessions: blend + predict under a lock so
        # that a concurrent request with another alpha never sees half-swapped weights.
        self._lock = threading.Lock()

    def set_alpha(self, alpha: float) -> None:
        alpha = float(alpha)
        if alpha != self.alpha:
            self.model.set_weights(interpolate_weights(self.psnr_weights, self.gan_weights, alpha))
            self.alpha = alpha

    def upscale(self, image: np.ndarray, *, alpha: float = 1.0, **kw) -> np.ndarray:
        with self._lock:
            self.set_alpha(alpha)
            return super().upscale(image, **kw)


def load_sr_model(method: str, scale: int, version: str | None = None, *,
                  weights_dir: Path | str | None = None):
    """Load the active (or given) model of ``method`` at ``scale`` from the registry.

    ``"bicubic"`` needs no weights. For ``"esrgan"`` the PSNR partner for interpolation is the
    version the GAN was initialised from (``card["init_version"]``), else the active
    ``rrdb_psnr`` model of the same scale.
    """
    from core import registry

    if method == "bicubic":
        return BicubicSR(scale)
    if method == "zero_filled":
        return ZeroFilledSR(scale)
    slot = slot_name(method, scale)
    model, card = registry.load_model("sr", version, slot=None if version else slot,
                                      weights_dir=weights_dir)
    if int(card["scale"]) != int(scale):
        raise ModelCardError(f"sr/{card['version']} is an x{card['scale']} model, not x{scale}.")
    if card.get("method", method) != method:
        raise ModelCardError(f"sr/{card['version']} is a {card.get('method')!r} model, "
                             f"not {method!r}.")
    if method != "esrgan":
        return KerasSR(model, card, method)
    partner = card.get("init_version") or registry.active_version(
        "sr", slot=slot_name("rrdb_psnr", scale), weights_dir=weights_dir)
    if partner is None:
        raise ModelNotFoundError(f"sr/{card['version']}: no PSNR-oriented model to "
                                 "interpolate with (init_version missing and no active "
                                 f"rrdb_psnr_x{scale}).")
    psnr_model, _ = registry.load_model("sr", partner, weights_dir=weights_dir)
    return InterpolatedSR(model, card, [np.array(w) for w in psnr_model.get_weights()], partner)

