"""Tiled inference with overlap and blended seams, so any image size runs in bounded memory.

The LR image is cut into ``tile×tile`` tiles that overlap by ``overlap`` pixels (the last tile of
a row/column is aligned to the image edge, so every tile has the same shape and a compiled model
is traced once). Each upscaled tile is weighted by a ramp that falls towards its inner edges
(pixels near a tile edge see less context) and the weighted tiles are averaged.
Model activations are bounded by the tile size; the output and a weight map are full size.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["DEFAULT_TILE", "DEFAULT_OVERLAP", "tile_starts", "upscale_tiled"]

DEFAULT_TILE = 128    # LR pixels; 128² → 512² keeps a CPU call around a second
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
    s·tw, C')``). ``tile <= 0`` or a tile at least the image size means one untiled call.
    ``on_tile(done, total)`` is called after each tile. Returns ``(s·h, s·w, C')`` float32."""
    lr = np.asarray(lr, dtype=np.float32)
    if lr.ndim != 3:
        raise ValueError(f"expected h×w×C, got shape {lr.shape}")
    h, w = lr.shape[:2]
    if tile <= 0 or (tile >= h and tile >= w):
        out = np.asarray(predict(lr[None]))[0]
        if on_tile:
            on_tile(1, 1)
        return out.astype(np.float32)
    overlap = max(0, min(overlap, tile // 2))
    ys, xs = tile_starts(h, tile, overlap), tile_starts(w, tile, overlap)
    acc = weight = None
    total, done = len(ys) * len(xs), 0
    for y in ys:
        th = min(tile, h)
        wy = _ramp(th * scale, overlap * scale, y > 0, y + th < h)
        for x in xs:
            tw = min(tile, w)
            out = np.asarray(predict(lr[None, y:y + th, x:x + tw]))[0].astype(np.float32)
            if acc is None:
                acc = np.zeros((h * scale, w * scale, out.shape[-1]), np.float32)
                weight = np.zeros((h * scale, w * scale, 1), np.float32)
            wx = _ramp(tw * scale, overlap * scale, x > 0, x + tw < w)
            wt = (wy[:, None] * wx[None, :])[..., None]
            sl = (slice(y * scale, (y + th) * scale), slice(x * scale, (x + tw) * scale))
            acc[sl] += out * wt
            weight[sl] += wt
            done += 1
            if on_tile:
                on_tile(done, total)
    return acc / weight
