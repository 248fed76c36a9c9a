"""Training data for super-resolution: HR images from a folder, random HR patches with content,
LR patches made on the fly by :func:`core.sr.degrade.degrade`.

Brain MRI slices are mostly black background; a patch is kept only if at least
``min_content`` of its pixels are brighter than :data:`CONTENT_THRESHOLD`.
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.errors import MedScanError
from core.imaging.export import IMAGE_SUFFIXES
from core.sr.degrade import crop_to_multiple, degrade

__all__ = ["IMAGE_EXTS", "CONTENT_THRESHOLD", "list_images", "load_image", "load_folder",
           "folder_fingerprint", "PatchSampler", "DegradationConfig"]

IMAGE_EXTS = IMAGE_SUFFIXES
# Intensity (on [0, 1]) above which a pixel counts as tissue rather than background air.
CONTENT_THRESHOLD = 0.04
# Give up looking for a patch with content after this many random tries (then accept any).
_MAX_TRIES = 50


def list_images(folder: str | Path) -> list[Path]:
    """Image files under ``folder`` (recursively), sorted."""
    root = Path(folder)
    if not root.is_dir():
        raise MedScanError(f"Data folder {str(root)!r} does not exist or is not a folder.")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_EXTS and p.is_file())
    if not files:
        raise MedScanError(f"No images ({', '.join(IMAGE_EXTS)}) found in {str(root)!r}.")
    return files


def load_image(path: str | Path, channels: int = 1) -> np.ndarray:
    """Read an image file as float32 [0, 1]: ``H×W`` for ``channels=1``, ``H×W×3`` for 3."""
    import cv2

    flag = cv2.IMREAD_GRAYSCALE if channels == 1 else cv2.IMREAD_COLOR
    arr = cv2.imread(str(path), flag | cv2.IMREAD_ANYDEPTH)
    if arr is None:
        raise MedScanError(f"Could not read image {str(path)!r}.")
    if channels == 3:
        arr = arr[..., ::-1]  # OpenCV's BGR → RGB
    scale = 65535.0 if arr.dtype == np.uint16 else 255.0
    return np.ascontiguousarray(arr, dtype=np.float32) / scale


def load_folder(folder: str | Path, channels: int = 1, limit: int | None = None) -> list[np.ndarray]:
    return [load_image(p, channels) for p in list_images(folder)[:limit]]


def folder_fingerprint(folder: str | Path) -> dict:
    """sha256 over the sorted relative names and bytes of the images; for model cards."""
    files = list_images(folder)
    h = hashlib.sha256()
    for p in files:
        h.update(str(p.relative_to(folder)).encode())
        h.update(p.read_bytes())
    return {"path": str(folder), "images": len(files), "sha256": h.hexdigest()}


@dataclass(frozen=True)
class DegradationConfig:
    """HR → LR per patch. With probability ``kspace_fraction`` k-space truncation (with
    ``kspace_window``), else bicubic downscaling after optional blur with optional Gaussian
    noise (``*_max`` fields sample a random strength in [0, max], 0 = off). With
    ``rician_snr_min`` > 0, Rician noise at an SNR drawn log-uniformly from
    [``rician_snr_min``, 4 × ``rician_snr_min``] is added to half the patches."""
    blur_sigma_max: float = 0.0
    noise_sigma_max: float = 0.0
    kspace_fraction: float = 0.0
    kspace_window: str | None = None
    rician_snr_min: float = 0.0

    def apply(self, hr: np.ndarray, scale: int, rng: np.random.Generator) -> np.ndarray:
        snr = None
        if self.rician_snr_min > 0 and rng.random() < 0.5:
            snr = float(self.rician_snr_min * 4 ** rng.random())
        if self.kspace_fraction > 0 and rng.random() < self.kspace_fraction:
            return degrade(hr, scale, kind="kspace", window=self.kspace_window,
                           rician_snr=snr, rng=rng)
        blur = float(rng.uniform(0, self.blur_sigma_max)) if self.blur_sigma_max > 0 else 0.0
        noise = float(rng.uniform(0, self.noise_sigma_max)) if self.noise_sigma_max > 0 else 0.0
        return degrade(hr, scale, blur_sigma=blur, noise_sigma=noise, rng=rng,
                       rician_snr=snr)

    def describe(self) -> dict:
        """The card's ``degradation`` section."""
        kinds = ("kspace" if self.kspace_fraction >= 1 else "mixed" if self.kspace_fraction > 0
                 else "bicubic")
        return {"kind": kinds, "bicubic": "Pillow, anti-aliased",
                "kspace_fraction": self.kspace_fraction, "kspace_window": self.kspace_window,
                "blur_sigma_max": self.blur_sigma_max, "noise_sigma_max": self.noise_sigma_max,
                "rician_snr_min": self.rician_snr_min or None}


class PatchSampler:
    """Endless random (LR, HR) patch batches: ``(B, p, p, C)`` and ``(B, p*s, p*s, C)``.

    Augmentation: random flips and 90° rotations (the dihedral group, as in ESRGAN training).
    """

    def __init__(self, images: list[np.ndarray], *, scale: int, lr_patch: int = 48,
                 batch_size: int = 16, degradation: DegradationConfig | None = None,
                 min_content: float = 0.5, augment: bool = True, seed: int | None = 0) -> None:
        if not images:
            raise MedScanError("No training images.")
        self.hr_patch = lr_patch * scale
        self.images = [crop_to_multiple(im, scale) for im in images]
        small = [im.shape for im in self.images if min(im.shape[:2]) < self.hr_patch]
        if small:
            raise MedScanError(f"Image of shape {small[0]} is smaller than the HR patch "
                               f"{self.hr_patch}² (lr_patch {lr_patch} × scale {scale}).")
        self.scale, self.lr_patch, self.batch_size = scale, lr_patch, batch_size
        self.degradation = degradation or DegradationConfig()
        self.min_content, self.augment = min_content, augment
        self.rng = np.random.default_rng(seed)

    def _patch(self) -> np.ndarray:
        p = self.hr_patch
        for attempt in range(_MAX_TRIES):
            im = self.images[self.rng.integers(len(self.images))]
            y = int(self.rng.integers(0, im.shape[0] - p + 1))
            x = int(self.rng.integers(0, im.shape[1] - p + 1))
            patch = im[y:y + p, x:x + p]
            if (patch > CONTENT_THRESHOLD).mean() >= self.min_content or attempt == _MAX_TRIES - 1:
                break
        if self.augment:
            patch = np.rot90(patch, int(self.rng.integers(4)))
            if self.rng.random() < 0.5:
                patch = patch[:, ::-1]
        return np.ascontiguousarray(patch)

    def batch(self) -> tuple[np.ndarray, np.ndarray]:
        hrs = [self._patch() for _ in range(self.batch_size)]
        lrs = [self.degradation.apply(h, self.scale, self.rng) for h in hrs]
        hr, lr = np.stack(hrs), np.stack(lrs)
        if hr.ndim == 3:
            hr, lr = hr[..., None], lr[..., None]
        return lr.astype(np.float32), hr.astype(np.float32)

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        while True:
            yield self.batch()
