"""Near-duplicate detection with a DCT perceptual hash, for honest calibration splits.

The brain-MRI training folder holds near duplicates (neighbouring slices, other contrasts of one
slice). A validation split by file then contains images the model has nearly seen, which are
confidently right, so a temperature fitted on them comes out too low. ``calibration_subset``
keeps the validation images whose hash is far from every training image's.

pHash: 32×32 grey image -> 2-D DCT -> the 8×8 lowest frequencies -> bits above their median
(Zauner 2010, "Implementation and Benchmarking of Perceptual Image Hash Functions").
"""
from __future__ import annotations

import cv2
import numpy as np

__all__ = ["phash", "phashes", "min_hamming", "max_ncc", "calibration_subset", "DEDUP_MAX_BITS",
           "DEDUP_MIN_NCC"]

DEDUP_MAX_BITS = 8  # Hamming distance (of 64) at or below which two images count as near duplicates
DEDUP_MIN_NCC = 0.90  # normalised correlation at 64x64 above which two images count as near duplicates


def phash(gray_u8: np.ndarray) -> np.ndarray:
    """64-bit perceptual hash of one grey image as a bool vector of length 64."""
    small = cv2.resize(np.asarray(gray_u8, np.float32), (32, 32), interpolation=cv2.INTER_AREA)
    low = cv2.dct(small)[:8, :8].ravel()
    return low > np.median(low[1:])


def phashes(images: np.ndarray) -> np.ndarray:
    """(N, H, W) -> (N, 64) bool."""
    return np.stack([phash(im) for im in images]) if len(images) else np.zeros((0, 64), bool)


def min_hamming(query: np.ndarray, reference: np.ndarray, chunk: int = 256) -> np.ndarray:
    """For each query hash, the smallest Hamming distance to any reference hash."""
    if not len(reference):
        return np.full(len(query), 64, np.int64)
    ref = reference.astype(np.uint8)
    out = []
    for i in range(0, len(query), chunk):
        q = query[i:i + chunk].astype(np.uint8)
        d = q.shape[1] - (q @ ref.T + (1 - q) @ (1 - ref).T)  # bits that differ
        out.append(d.min(axis=1))
    return np.concatenate(out).astype(np.int64) if out else np.zeros(0, np.int64)


def _ncc_vectors(images: np.ndarray, size: int = 64) -> np.ndarray:
    v = np.stack([cv2.resize(np.asarray(im, np.float32), (size, size),
                             interpolation=cv2.INTER_AREA).ravel() for im in images])
    v -= v.mean(axis=1, keepdims=True)
    return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-6)


def max_ncc(query: np.ndarray, reference: np.ndarray, chunk: int = 512) -> np.ndarray:
    """For each query image (N, H, W), the highest normalised correlation at 64x64 with any
    reference image: catches copies whose intensity scaling differs (another export of the
    same slice), which pHash at times misses."""
    if not len(reference) or not len(query):
        return np.full(len(query), -1.0)
    ref = _ncc_vectors(reference)
    return np.concatenate([(_ncc_vectors(query[i:i + chunk]) @ ref.T).max(axis=1)
                           for i in range(0, len(query), chunk)])


def calibration_subset(train_images: np.ndarray, val_images: np.ndarray,
                       max_bits: int = DEDUP_MAX_BITS, min_keep: int = 50) -> np.ndarray:
    """Indices of validation images with no near duplicate (distance <= ``max_bits``) among the
    training images; all indices when fewer than ``min_keep`` would remain."""
    dist = min_hamming(phashes(val_images), phashes(train_images))
    keep = np.flatnonzero(dist > max_bits)
    return keep if len(keep) >= min_keep else np.arange(len(val_images))
