"""Loaded super-resolution models behind one small interface, plus network interpolation.

``load_sr_model(method, scale, version=None)`` returns an object with ``method``, ``scale``,
``version``, ``card`` and ``upscale(image, *, tile, overlap, alpha, on_tile)``; the app caches it
(``st.cache_resource``) and passes it to :func:`core.sr.compare` through ``models=``.

Tiling (:mod:`core.sr.tiling`): ``tile=None`` picks the tile size from the memory budget
(untiled when the image fits), ``overlap=None`` uses the model's own context margin, measured
once on first use and capped by its theoretical receptive field, so tiled output equals untiled
output within a grey level for every tile size.

Colour: the shipped models are grayscale. A colour (H×W×3) image given to a grayscale model is
converted to YCbCr (ITU-R BT.601); the model super-resolves Y and Cb/Cr are upscaled bicubically
(the usual SR practice: detail lives in luminance, and it costs one model call, not three).

Network interpolation (Wang et al. 2018, ESRGAN sec. 3.4): ``θ = (1 − α)·θ_PSNR + α·θ_GAN``.
``alpha=1`` is the pure GAN generator (ESRGAN or SRGAN), ``alpha=0`` the PSNR-oriented model it
was fine-tuned from (:data:`core.sr.methods.GAN_PARTNER`). Both weight lists stay cached as
numpy arrays, so a new alpha costs one ``set_weights``.
"""
from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from core.errors import MedScanError, ModelCardError, ModelNotFoundError
from core.sr.degrade import bicubic_upscale, zero_filled_upscale
from core.sr.tiling import (activation_bytes_per_pixel, auto_tile, check_tile, context_margin,
                             measure_context, receptive_radius, upscale_tiled)

__all__ = ["SR_METHODS", "METHOD_LABELS", "MODEL_METHODS", "ARCHITECTURE_BY_METHOD", "slot_name",
           "load_sr_model", "BicubicSR", "KerasSR", "InterpolatedSR", "interpolate_weights",
           "rgb_to_ycbcr", "ycbcr_to_rgb"]

# The table of SR methods lives in core.sr.methods (no imports, so core.db can label rated views
# without importing the model code); re-exported here for the existing callers.
from core.sr.methods import (ARCHITECTURE_BY_METHOD, GAN_PARTNER,  # noqa: E402
                             METHOD_LABELS, MODEL_METHODS, SR_METHODS, slot_name)


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
    """A registry model (SRCNN, SRResNet or RRDBNet) that maps LR → HR."""

    def __init__(self, model, card: dict, method: str) -> None:
        self.model, self.card, self.method = model, card, method
        self.version = card.get("version")
        self.scale = int(card["scale"])
        self.channels = int(card["network"].get("num_in_ch", 1))
        self._predict = _compiled_predict(model)
        self.radius = receptive_radius(model)
        self.bytes_per_pixel = activation_bytes_per_pixel(model)
        self._context: int | None = None
        # The app shares one cached instance between sessions; RLock: the GAN subclass holds
        # it around set_alpha + predict and measures its context inside.
        self._lock = threading.RLock()

    def _forward(self, x: np.ndarray) -> np.ndarray:
        import keras

        return keras.ops.convert_to_numpy(self.model(x, training=False))

    def _measure_context(self) -> int:
        return measure_context(self._forward, self.scale, self.channels, self.radius)

    @property
    def context(self) -> int:
        """Overlap (LR px) that makes tiled output equal untiled output: the measured
        effective context with a safety margin, at most the theoretical receptive radius."""
        with self._lock:
            if self._context is None:
                self._context = context_margin(self._measure_context(), self.radius)
            return self._context

    def tile_for(self, height: int, width: int) -> int:
        """The automatic tile size for an LR input of this size (0 = untiled)."""
        if auto_tile(height, width, 0, self.bytes_per_pixel) == 0:
            return 0     # fits the budget: no need to measure the context
        return auto_tile(height, width, self.context, self.bytes_per_pixel)

    def _run(self, lr: np.ndarray, tile: int | None, overlap: int | None,
             on_tile) -> np.ndarray:
        check_tile(tile)
        if tile is None:
            tile = self.tile_for(*lr.shape[:2])
        if tile and overlap is None:
            overlap = self.context
        return upscale_tiled(self._predict, lr, self.scale, tile=tile, overlap=overlap or 0,
                             on_tile=on_tile)

    def upscale(self, image: np.ndarray, *, tile: int | None = None,
                overlap: int | None = None, on_tile=None, **_) -> np.ndarray:
        """``image`` H×W or H×W×3 float [0, 1] → upscaled, same layout, clipped to [0, 1].
        ``tile``: LR core size, 0 untiled, ``None`` from the memory budget; ``overlap``: LR
        context around each core, ``None`` the model's :attr:`context`."""
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
    """A GAN generator (ESRGAN, SRGAN) with network interpolation towards its PSNR-oriented
    initialisation."""

    def __init__(self, model, card: dict, psnr_weights: list[np.ndarray],
                 psnr_version: str | None, method: str = "esrgan") -> None:
        super().__init__(model, card, method)
        self.gan_weights = [np.array(w) for w in model.get_weights()]
        self.psnr_weights = psnr_weights
        self.psnr_version = psnr_version
        interpolate_weights(psnr_weights, self.gan_weights, 1.0)  # checks shapes now
        self.alpha = 1.0

    def set_alpha(self, alpha: float) -> None:
        alpha = float(alpha)
        if alpha != self.alpha:
            self.model.set_weights(interpolate_weights(self.psnr_weights, self.gan_weights, alpha))
            self.alpha = alpha

    def _measure_context(self) -> int:
        """The larger of the two end points' contexts (α 0 and 1)."""
        with self._lock:
            current, worst = self.alpha, 0
            try:
                for alpha in (0.0, 1.0):
                    self.set_alpha(alpha)
                    worst = max(worst, super()._measure_context())
            finally:
                self.set_alpha(current)
            return worst

    def upscale(self, image: np.ndarray, *, alpha: float = 1.0, **kw) -> np.ndarray:
        # blend + predict under the lock: a concurrent request with another alpha never sees
        # half-swapped weights
        with self._lock:
            self.set_alpha(alpha)
            return super().upscale(image, **kw)


def load_sr_model(method: str, scale: int, version: str | None = None, *,
                  weights_dir: Path | str | None = None):
    """Load the active (or given) model of ``method`` at ``scale`` from the registry.

    ``"bicubic"`` needs no weights. For a GAN method (``"esrgan"``, ``"srgan"``) the PSNR
    partner for interpolation is the version the GAN was initialised from
    (``card["init_version"]``), else the active model of its partner method
    (:data:`core.sr.methods.GAN_PARTNER`) at the same scale.
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
    if method not in GAN_PARTNER:
        return KerasSR(model, card, method)
    partner = card.get("init_version") or registry.active_version(
        "sr", slot=slot_name(GAN_PARTNER[method], scale), weights_dir=weights_dir)
    if partner is None:
        raise ModelNotFoundError(f"sr/{card['version']}: no PSNR-oriented model to "
                                 "interpolate with (init_version missing and no active "
                                 f"{slot_name(GAN_PARTNER[method], scale)}).")
    psnr_model, _ = registry.load_model("sr", partner, weights_dir=weights_dir)
    return InterpolatedSR(model, card, [np.array(w) for w in psnr_model.get_weights()], partner,
                          method)

