"""Tiled inference, so any image size runs in bounded memory, and equal to untiled inference.

The LR image is cut into cores of ``tile`` pixels; each core is upscaled inside a window of
``tile + 2·overlap`` pixels (``overlap`` of context on each side, the window moved in where it
would leave the image, so every window has the same shape and a compiled model is traced once),
and only the core's part of the window's output is kept. No seams are blended: a pixel's value
is what the model computes with at least ``overlap`` pixels of context around it, which equals
the untiled value once ``overlap`` covers the model's receptive field.

How much context is enough is a property of the network, not a constant:

* :func:`receptive_radius` walks the Keras graph and adds up every convolution's reach (in LR
  pixels; a 3×3 conv after ×4 upsampling reaches a quarter LR pixel). Beyond it the output
  cannot change at all, so ``overlap = receptive_radius`` makes tiling exact (to float rounding).
* :func:`measure_context` measures the *effective* reach: it runs the model on a probe image and
  on a crop of it and finds how far from the crop's edge the output still differs by more than
  :data:`CONTEXT_TOL`. Trained networks reach far less than their theoretical field (the shipped
  RRDB: 63 theoretical, about 10 effective), so the margin used
  (:func:`context_margin`) is the measured one with a safety factor, capped by the theoretical.

The default tile size comes from a memory budget (``MEDSCAN_SR_MEMORY_MB``, see
:func:`auto_tile`) and the model's activations per pixel (:func:`activation_bytes_per_pixel`),
so the common 256² and 512² scans run untiled or in a few tiles.
"""
from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

__all__ = ["DEFAULT_TILE", "DEFAULT_OVERLAP", "CONTEXT_TOL", "MIN_AUTO_TILE", "MIN_TILE",
           "check_tile", "tile_starts",
           "upscale_tiled", "receptive_radius", "measure_context", "context_margin",
           "activation_bytes_per_pixel", "auto_tile", "MEMORY_OVERHEAD"]

DEFAULT_TILE = 128    # LR pixels (core); used only where no memory budget applies
DEFAULT_OVERLAP = 16  # LR pixels; the context when a caller has no model to measure
#: Output change (on the [0, 1] scale) below which missing context counts as no change when the
#: effective context is measured: a fifth of a grey level, so that the images the tiled and the
#: untiled paths write agree within one 8-bit level on content unlike the probes.
CONTEXT_TOL = 0.2 / 255
#: Safety on the measured context: ``ceil(measured · factor) + extra`` (capped by the theoretical
#: radius): scans differ from the probe images.
CONTEXT_SAFETY = (1.25, 2)
#: The smallest tile size accepted (LR px; 0 means untiled): below it every core pays for a
#: window several times its area in context, and a 128² scan would take thousands of calls.
MIN_TILE = 8
#: Automatic tiles are never smaller than this (LR px): smaller ones cost more in context than
#: they save in memory.
MIN_AUTO_TILE = 32
#: Measured peak memory of a TensorFlow CPU call over the estimate of
#: :func:`activation_bytes_per_pixel` (allocator slack, oneDNN workspaces, the input and output
#: copies); see the README's tiling section for the measurement.
MEMORY_OVERHEAD = 2.1
_BYTES = 4            # float32


def check_tile(tile: int | None) -> None:
    """Refuse tile sizes the tiler does not offer: negative, or 1 to :data:`MIN_TILE` − 1."""
    if tile is None:
        return
    from core.errors import MedScanError

    if int(tile) != tile or tile < 0 or 0 < tile < MIN_TILE:
        raise MedScanError(f"Tile size {tile!r} is not accepted: use 0 (untiled) or at least "
                           f"{MIN_TILE} LR pixels (smaller tiles spend most of their time on "
                           "the context around them).")


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets covering ``[0, length)`` with tiles of ``tile`` overlapping ≥ ``overlap``."""
    if tile >= length:
        return [0]
    stride = max(tile - overlap, 1)
    starts = list(range(0, length - tile, stride))
    starts.append(length - tile)
    return starts


def _ramp(n: int, ramp: int, lo_inner: bool, hi_inner: bool) -> np.ndarray:
    """1-D weights: 1 inside, linear ramp (never 0) over ``ramp`` px at inner edges."""
    w = np.ones(n, dtype=np.float32)
    r = min(ramp, n // 2)
    if r > 0:
        up = (np.arange(r, dtype=np.float32) + 0.5) / r
        if lo_inner:
            w[:r] = np.minimum(w[:r], up)
        if hi_inner:
            w[n - r:] = np.minimum(w[n - r:], up[::-1])
    return w


def upscale_tiled(predict: Callable[[np.ndarray], np.ndarray], lr: np.ndarray, scale: int, *,
                  tile: int = DEFAULT_TILE, overlap: int = DEFAULT_OVERLAP,
                  on_tile: Callable[[int, int], None] | None = None) -> np.ndarray:
    """Upscale ``lr`` (``h×w×C`` float32) with ``predict`` (``(1, th, tw, C)`` → ``(1, s·th,
    s·tw, C')``). ``tile <= 0``, or a window (``tile + 2·overlap``) covering the image, means
    one untiled call.

    Each output pixel comes from exactly one window, one in which it has at least ``overlap``
    LR pixels of real context on every side that is not the image's own border (there the
    window and the whole image see the same border). Windows all have one shape (the last of a
    row or column is moved in to the image edge), so a compiled model is traced once. With
    ``overlap`` at least the model's receptive-field radius the result equals the untiled one
    (to float rounding); below it, the error is what the missing context contributes, with no
    seams blended in.
    ``on_tile(done, total)`` is called after each tile. Returns ``(s·h, s·w, C')`` float32."""
    lr = np.asarray(lr, dtype=np.float32)
    if lr.ndim != 3:
        raise ValueError(f"expected h×w×C, got shape {lr.shape}")
    h, w = lr.shape[:2]
    overlap = max(0, int(overlap))
    window = tile + 2 * overlap
    if tile <= 0 or (window >= h and window >= w):
        out = np.asarray(predict(lr[None]))[0]
        if on_tile:
            on_tile(1, 1)
        return out.astype(np.float32)
    th, tw = min(window, h), min(window, w)
    cores_y = _cores(h, tile) if th < h else [(0, h)]
    cores_x = _cores(w, tile) if tw < w else [(0, w)]
    out_img = None
    total, done = len(cores_y) * len(cores_x), 0
    for cy0, cy1 in cores_y:
        y = min(max(cy0 - overlap, 0), h - th)
        for cx0, cx1 in cores_x:
            x = min(max(cx0 - overlap, 0), w - tw)
            out = np.asarray(predict(lr[None, y:y + th, x:x + tw]))[0].astype(np.float32)
            if out_img is None:
                out_img = np.zeros((h * scale, w * scale, out.shape[-1]), np.float32)
            out_img[cy0 * scale:cy1 * scale, cx0 * scale:cx1 * scale] = out[
                (cy0 - y) * scale:(cy1 - y) * scale, (cx0 - x) * scale:(cx1 - x) * scale]
            done += 1
            if on_tile:
                on_tile(done, total)
    return out_img


def _cores(length: int, tile: int) -> list[tuple[int, int]]:
    """Consecutive core ranges of ``tile`` pixels covering ``[0, length)`` (the last shorter)."""
    return [(a, min(a + tile, length)) for a in range(0, length, tile)]


# ---- the network's reach and memory ---------------------------------------------------------

def _inbound(layer) -> list:
    nodes = getattr(layer, "_inbound_nodes", [])
    if not nodes:
        return []
    return [t._keras_history.operation for t in nodes[0].input_tensors]


def _walk(model):
    """Per layer of a functional model (topological order): ``(layer, factor_in, factor_out,
    reach)`` with factors relative to the LR input and ``reach`` the layer's own radius in LR
    pixels."""
    from keras import layers

    factor: dict[int, float] = {}
    out = []
    for layer in model.layers:
        ins = _inbound(layer)
        f_in = max((factor[id(i)] for i in ins), default=1.0)
        f_out, reach = f_in, 0.0
        if isinstance(layer, layers.Conv2D):
            k = layer.kernel_size
            d = layer.dilation_rate
            reach = max((k[0] - 1) // 2 * d[0], (k[1] - 1) // 2 * d[1]) / f_in
            f_out = f_in / max(layer.strides)
        elif isinstance(layer, layers.UpSampling2D):
            f_out = f_in * max(layer.size)
            # bicubic / bilinear read 2 / 1 input pixels either side; nearest only its own
            reach = {"bicubic": 2.0, "bilinear": 1.0}.get(layer.interpolation, 0.0) / f_in
        elif hasattr(layer, "factor") and type(layer).__name__ == "PixelShuffle":
            f_out = f_in * layer.factor
        elif isinstance(layer, (layers.MaxPooling2D, layers.AveragePooling2D)):
            reach = (max(layer.pool_size) - 1) / f_in
            f_out = f_in / max(layer.strides)
        factor[id(layer)] = f_out
        out.append((layer, ins, f_in, f_out, reach))
    return out


def receptive_radius(model) -> int:
    """Theoretical receptive-field radius in LR pixels: the largest sum of per-layer reaches
    along any path through the graph (Conv2D ``(k−1)/2·dilation``, bicubic upsampling 2 pixels,
    each divided by the upsampling factor at that layer), rounded up. No output pixel depends on
    input pixels further away than this."""
    radius: dict[int, float] = {}
    for layer, ins, _f_in, _f_out, reach in _walk(model):
        radius[id(layer)] = max((radius[id(i)] for i in ins), default=0.0) + reach
    return int(math.ceil(max(radius.values(), default=0.0) - 1e-9))


def activation_bytes_per_pixel(model) -> float:
    """Estimated peak activation bytes per LR input pixel of one inference call: the widest
    layer (its inputs and its output, float32, each at its resolution) times
    :data:`MEMORY_OVERHEAD`."""
    walked = _walk(model)
    floats = {id(layer): _channels(layer) * f_out**2 for layer, _i, _fi, f_out, _r in walked}
    widest = max((floats[id(layer)] + sum(floats.get(id(i), 0.0) for i in ins)
                  for layer, ins, *_ in walked), default=1.0)
    return widest * _BYTES * MEMORY_OVERHEAD


def _channels(layer) -> int:
    try:
        return int(layer.output.shape[-1])
    except (AttributeError, TypeError, ValueError):
        return 0


def measure_context(forward: Callable[[np.ndarray], np.ndarray], scale: int, channels: int,
                    radius: int, *, tol: float = CONTEXT_TOL, rows: int = 24,
                    seed: int = 0) -> int:
    """The effective context (LR px) ``forward`` needs: the smallest ``m`` such that every output
    pixel with at least ``m`` LR pixels of context towards a cut differs from the uncut result by
    at most ``tol``. Probes: uniform noise and blurred high-contrast noise (edges), cut across
    columns and across rows; ``radius`` (:func:`receptive_radius`) bounds the answer and sizes
    the probes. ``forward`` maps ``(1, h, w, C)`` → ``(1, s·h, s·w, C')``."""
    import cv2

    radius = max(int(radius), 1)
    kept = radius + 4                      # the cut keeps this many columns
    full = kept + radius + 1               # ... of a probe this wide
    rng = np.random.default_rng(seed)
    noise = rng.random((rows, full, channels)).astype(np.float32)
    edges = np.stack([cv2.GaussianBlur(noise[..., c], (0, 0), 1.5) for c in range(channels)], -1)
    edges = np.clip(edges * 3 - 1, 0, 1).astype(np.float32)
    worst = -1
    for probe in (noise, edges):
        for axis in (1, 0):
            img = probe if axis == 1 else probe.transpose(1, 0, 2)
            a = np.asarray(forward(np.ascontiguousarray(img[None])))[0]
            cut = img[:, :kept] if axis == 1 else img[:kept]
            b = np.asarray(forward(np.ascontiguousarray(cut[None])))[0]
            a = a[:, :kept * scale] if axis == 1 else a[:kept * scale]
            err = np.abs(a - b).max(axis=(0, 2) if axis == 1 else (1, 2))   # per HR index
            bad = np.nonzero(err > tol)[0]
            if bad.size:                   # LR distance of the worst pixel from the cut
                worst = max(worst, kept - 1 - int(bad.min()) // scale)
    return min(worst + 1, radius)


def context_margin(measured: int, radius: int) -> int:
    """The overlap used for tiling: the measured context with :data:`CONTEXT_SAFETY`, never
    more than the theoretical ``radius`` (which is exact)."""
    factor, extra = CONTEXT_SAFETY
    return int(min(radius, math.ceil(measured * factor) + extra))


def auto_tile(height: int, width: int, margin: int, bytes_per_px: float,
              budget_mb: float | None = None) -> int:
    """Tile size (LR px) for an ``height×width`` input under the memory budget (default
    ``MEDSCAN_SR_MEMORY_MB``): ``0`` (untiled) when the whole image fits; else the image is cut
    into as few cores per side as a window of ``tile + 2·margin`` allows, and the cores are
    made equal (512 px with room for 470 gives two cores of 256, not 470 + 42), never smaller
    than :data:`MIN_AUTO_TILE`."""
    if budget_mb is None:
        from core.config import sr_memory_mb

        budget_mb = sr_memory_mb()
    budget = float(budget_mb) * 2**20
    if height * width * bytes_per_px <= budget:
        return 0
    largest = max(int(math.sqrt(budget / bytes_per_px)) - 2 * int(margin), MIN_AUTO_TILE)
    side = max(height, width)
    pieces = math.ceil(side / largest)
    return max(math.ceil(side / pieces), MIN_AUTO_TILE)
