"""Tiled inference with overlap and blended seams, so any image size runs in bounded memory.

The LR image is cut into windows of ``tile + 2·overlap`` pixels placed every ``tile`` pixels
(``tile`` is the core, ``overlap`` the context added on each side; the last window of a
row/column is aligned to the image edge, so every window has the same shape and a compiled
model is traced once). Neighbouring windows share a band of ``2·overlap`` pixels, across which
their upscaled outputs are cross-faded with linear weights (pixels near a window edge see less
context, so they weigh less). Model activations are bounded by the window size; the output and a
weight map are full size.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["DEFAULT_TILE", "DEFAULT_OVERLAP", "tile_starts", "upscale_tiled"]

DEFAULT_TILE = 128    # LR pixels (core); a 160² window → 640² output is ~1 s on the CPU
DEFAULT_OVERLAP = 16  # LR pixels; wider than the shipped models' effective receptive field


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
    ys, xs = tile_starts(h, window, 2 * overlap), tile_starts(w, window, 2 * overlap)
    th, tw = min(window, h), min(window, w)
    ramp = 2 * overlap * scale
    acc = weight = None
    total, done = len(ys) * len(xs), 0
    for y in ys:
        wy = _ramp(th * scale, ramp, y > 0, y + th < h)
        for x in xs:
            out = np.asarray(predict(lr[None, y:y + th, x:x + tw]))[0].astype(np.float32)
            if acc is None:
                acc = np.zeros((h * scale, w * scale, out.shape[-1]), np.float32)
                weight = np.zeros((h * scale, w * scale, 1), np.float32)
            wx = _ramp(tw * scale, ramp, x > 0, x + tw < w)
            wt = (wy[:, None] * wx[None, :])[..., None]
            sl = (slice(y * scale, (y + th) * scale), slice(x * scale, (x + tw) * scale))
            acc[sl] += out * wt
            weight[sl] += wt
            done += 1
            if on_tile:
                on_tile(done, total)
    return acc / weight
