"""Tiled inference with overlap and blended seams, so any image size runs in bounded memory.

The LR image is cut into cores of ``tile`` pixels; each core is upscaled inside a window of
``tile + 2·overlap`` pixels (``overlap`` of context on each side, the window moved in where it
would leave the image, so every window has the same shape and a compiled model is traced once),
and only the core's part of the window's output is kept. No seams are blended: a pixel's value
is what the model computes with at least ``overlap`` pixels of context around it, which equals
the untiled value once ``overlap`` covers the model's receptive field
(:func:`core.sr.models.context_margin`). Model activations are bounded by the window size.
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
