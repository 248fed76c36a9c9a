"""Image-folder data sets (one subfolder per class) and a backend-agnostic input pipeline.

Images are decoded once, head-cropped and resized (:mod:`core.classifier.preprocess`) and kept
in memory as uint8; :class:`ImageFolderSequence` (a ``keras.utils.PyDataset``) augments each
batch with OpenCV in worker threads while the model trains, so the same pipeline feeds
TensorFlow, JAX or PyTorch back ends.
"""
from __future__ import annotations

import functools
import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import keras
import numpy as np

from core.classifier.preprocess import crop_resize, head_bbox, normalise, read_gray
from core.imaging.export import IMAGE_SUFFIXES

__all__ = ["IMAGE_EXTENSIONS", "FolderData", "list_image_folder", "stratified_split",
           "training_split", "card_split", "fingerprint", "load_images", "class_weights", "augment", "augment_strong", "letterbox", "AUGMENTATIONS", "ImageFolderSequence"]

IMAGE_EXTENSIONS = frozenset(IMAGE_SUFFIXES)


@dataclass
class FolderData:
    classes: list[str]
    files: list[Path]
    labels: np.ndarray  # int, index into classes

    def counts(self) -> dict[str, int]:
        return {c: int((self.labels == i).sum()) for i, c in enumerate(self.classes)}


def list_image_folder(root: str | Path, classes: Sequence[str] | None = None,
                      min_classes: int = 2) -> FolderData:
    """Files of ``root/<class>/*`` sorted by name; ``classes`` fixes the label order."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"Data folder {root} does not exist.")
    found = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    classes = list(classes) if classes is not None else found
    if len(classes) < min_classes:
        raise ValueError(f"{root}: need at least {min_classes} class subfolders, found {found}.")
    files, labels = [], []
    for i, c in enumerate(classes):
        d = root / c
        if not d.is_dir():
            raise ValueError(f"{root}: class folder {c!r} is missing (model classes: {classes}).")
        for f in sorted(d.iterdir()):
            if f.suffix.lower() in IMAGE_EXTENSIONS and f.is_file():
                files.append(f)
                labels.append(i)
    if not files:
        raise ValueError(f"{root}: no images ({', '.join(sorted(IMAGE_EXTENSIONS))}).")
    return FolderData(classes, files, np.asarray(labels, dtype=np.int64))


def stratified_split(labels: np.ndarray, val_fraction: float, seed: int
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, val): ``val_fraction`` of each class, at least one per class."""
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction!r}.")
    rng = np.random.default_rng(seed)
    train, val = [], []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        n_val = max(1, int(round(len(idx) * val_fraction)))
        val.extend(idx[:n_val])
        train.extend(idx[n_val:])
    return np.sort(np.array(train, dtype=np.int64)), np.sort(np.array(val, dtype=np.int64))


def training_split(labels: np.ndarray, val_fraction: float, seed: int,
                   max_images: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The (train, val) indices a training run uses: an optional stratified subsample of
    ``max_images`` (seed + 1), then :func:`stratified_split` of it (seed)."""
    idx_all = np.arange(len(labels))
    if max_images and max_images < len(idx_all):
        idx_all, _ = stratified_split(labels, 1 - max_images / len(idx_all), seed + 1)
    tr_rel, va_rel = stratified_split(labels[idx_all], val_fraction, seed)
    return idx_all[tr_rel], idx_all[va_rel]


def card_split(data: FolderData, card: dict, where: str | Path = "this folder"
               ) -> tuple[np.ndarray, np.ndarray]:
    """A registry version's own (train, val) split of ``data``, rebuilt from its card's training
    config; ``ValueError`` when ``data`` is not the folder it was trained on (fingerprint)."""
    expected = (card.get("data") or {}).get("fingerprint")
    if expected and fingerprint(data) != expected:
        raise ValueError(f"{where} is not the training data of {card.get('version')} "
                         f"(fingerprint differs from the card's).")
    cfg = (card.get("training") or {}).get("config") or {}
    return training_split(data.labels, float(cfg.get("val_fraction", 0.15)),
                          int(cfg.get("seed", 42)), cfg.get("max_images"))


def fingerprint(data: FolderData) -> str:
    """SHA-256 over relative paths, sizes and labels (cheap; identifies the training set)."""
    h = hashlib.sha256()
    for f, y in zip(data.files, data.labels):
        h.update(f"{f.parent.name}/{f.name}:{f.stat().st_size}:{int(y)}\n".encode())
    return "sha256:" + h.hexdigest()


def load_images(files: Sequence[Path], preprocessing: dict) -> np.ndarray:
    """Decode, head-crop and resize: ``(N, S, S)`` uint8 (OpenCV fast path for training)."""
    size = int(preprocessing["size"][0])
    out = np.empty((len(files), size, size), np.uint8)
    for i, f in enumerate(files):
        gray = read_gray(Path(f))
        box = (head_bbox(gray, preprocessing.get("crop_margin", 0.02),
                         preprocessing.get("mask_threshold", 0.5))
               if preprocessing.get("head_crop", True) else None)
        out[i] = crop_resize(gray, box, size)
    return out


def class_weights(labels: np.ndarray, num_classes: int) -> dict[int, float]:
    """'Balanced' weights n / (k * n_c), as scikit-learn computes them."""
    counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
    return {i: float(len(labels) / (num_classes * c)) if c else 0.0 for i, c in enumerate(counts)}


def augment(img: np.ndarray, rng: np.random.Generator, *, max_rotate: float = 12.0,
            zoom: tuple[float, float] = (0.9, 1.12), p_blur: float = 0.35) -> np.ndarray:
    """One uint8 S×S crop -> augmented copy: horizontal flip, rotation, zoom, shift, contrast /
    gamma, and blur or down-up scaling (so sharpness is no class cue: upscaled notumor images
    are blurrier than the rest)."""
    s = img.shape[0]
    if rng.random() < 0.5:
        img = img[:, ::-1]
    angle = rng.uniform(-max_rotate, max_rotate)
    scale = rng.uniform(*zoom)
    m = cv2.getRotationMatrix2D((s / 2 - 0.5, s / 2 - 0.5), angle, scale)
    m[:, 2] += rng.uniform(-0.05, 0.05, size=2) * s
    img = cv2.warpAffine(np.ascontiguousarray(img), m, (s, s), flags=cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    r = rng.random()
    if r < p_blur / 2:
        img = cv2.GaussianBlur(img, (0, 0), sigmaX=rng.uniform(0.4, 1.2))
    elif r < p_blur:
        f = rng.uniform(0.45, 0.8)
        small = cv2.resize(img, (max(8, int(s * f)),) * 2, interpolation=cv2.INTER_AREA)
        img = cv2.resize(small, (s, s), interpolation=cv2.INTER_LINEAR)
    x = img.astype(np.float32) / 255.0
    x = np.power(x, rng.uniform(0.75, 1.33))                 # gamma
    x = (x - x.mean()) * rng.uniform(0.8, 1.25) + x.mean()   # contrast
    x = x * rng.uniform(0.9, 1.1)                            # brightness
    return np.clip(x * 255.0, 0, 255)


@functools.lru_cache(maxsize=4)
def _polynomial_basis(s: int) -> np.ndarray:
    """x, y, xy, x², y² on an s×s grid over [-1, 1]² (built once per size, read-only)."""
    yy, xx = np.mgrid[-1:1:complex(s), -1:1:complex(s)].astype(np.float32)
    basis = np.stack([xx, yy, xx * yy, xx ** 2, yy ** 2])
    basis.setflags(write=False)
    return basis


def _bias_field(s: int, rng: np.random.Generator, strength: float) -> np.ndarray:
    """A smooth multiplicative field (MRI coil inhomogeneity): exp of a random 2nd-order
    polynomial in x, y scaled to +-``strength`` (log units)."""
    c = rng.uniform(-1, 1, size=5).astype(np.float32)
    field = np.tensordot(c, _polynomial_basis(s), axes=1)
    field /= max(float(np.abs(field).max()), 1e-6)
    return np.exp(strength * field)


def letterbox(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Black bars of 3-15 % of the side on top and bottom, or left and right (the padding of
    non-square sources)."""
    s = img.shape[0]
    bar = max(1, int(s * rng.uniform(0.03, 0.15)))
    out = img.copy()
    if rng.random() < 0.5:
        out[:bar], out[s - bar:] = 0, 0
    else:
        out[:, :bar], out[:, s - bar:] = 0, 0
    return out


def augment_strong(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """:func:`augment` with wider geometry, then what differs between the data set's sources:
    bias field, noise, JPEG re-compression and letterbox bars (most notumor sources are
    non-square and padded), plus a small cut-out. Same in / out as :func:`augment`."""
    s = img.shape[0]
    img = np.ascontiguousarray(img)
    if rng.random() < 0.3:
        img = letterbox(img, rng)
    x = augment(img, rng, max_rotate=20.0, zoom=(0.82, 1.2), p_blur=0.45) / 255.0
    if rng.random() < 0.5:
        x = x * _bias_field(s, rng, rng.uniform(0.1, 0.35))
    if rng.random() < 0.4:                                    # Gaussian / Rician-like noise
        sigma = rng.uniform(0.005, 0.04)
        x = np.sqrt((x + rng.normal(0, sigma, x.shape)) ** 2 + rng.normal(0, sigma, x.shape) ** 2)
    x = np.clip(x * 255.0, 0, 255)
    if rng.random() < 0.35:                                   # JPEG re-compression
        ok, buf = cv2.imencode(".jpg", x.astype(np.uint8),
                               [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(30, 92))])
        if ok:
            x = cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE).astype(np.float32)
    if rng.random() < 0.25:                                   # cut-out
        h = int(s * rng.uniform(0.08, 0.2))
        y0, x0 = rng.integers(0, s - h, size=2)
        x = x.copy()
        x[y0:y0 + h, x0:x0 + h] = float(x.mean())
    return x.astype(np.float32)


AUGMENTATIONS = {
    "standard": augment,
    "strong": augment_strong,
}


class ImageFolderSequence(keras.utils.PyDataset):
    """Batches ``(x, one-hot y)`` from in-memory uint8 crops; shuffles and augments when
    ``training``. Keras prefetches ``max_queue_size`` batches with ``workers`` threads. With
    ``background_grid`` (h, w) set, batches are ``((x, background grid), y)`` for the
    background penalty (:mod:`core.classifier.focus`), the grid made from the augmented crops."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, num_classes: int, *,
                 batch_size: int, normalise_mode: str, channels: int, training: bool,
                 seed: int = 0, workers: int = 1, max_queue_size: int = 8,
                 augmentation: str = "standard", repeats: np.ndarray | None = None) -> None:
        super().__init__(workers=workers, use_multiprocessing=False, max_queue_size=max_queue_size)
        self.images, self.labels = images, labels
        # training: image i appears repeats[i] times per epoch (source oversampling)
        self._pool = (np.arange(len(images)) if repeats is None
                      else np.repeat(np.arange(len(images)), np.asarray(repeats, np.int64)))
        self.num_classes, self.batch_size = num_classes, batch_size
        self.normalise_mode, self.channels = normalise_mode, channels
        self.training, self.seed = training, seed
        if augmentation not in AUGMENTATIONS:
            raise ValueError(f"augmentation must be one of {sorted(AUGMENTATIONS)}, "
                             f"got {augmentation!r}.")
        self._augment = AUGMENTATIONS[augmentation]
        self.background_grid: tuple[int, int] | None = None
        self._epoch = 0
        self._order = self._pool if training else np.arange(len(images))
        self._reshuffle()

    def _reshuffle(self) -> None:
        if self.training:
            self._order = np.random.default_rng((self.seed, self._epoch)).permutation(self._pool)

    def __len__(self) -> int:
        return math.ceil(len(self._order) / self.batch_size)

    def __getitem__(self, index: int):
        idx = self._order[index * self.batch_size:(index + 1) * self.batch_size]
        if self.training:
            rng = np.random.default_rng((self.seed, self._epoch, index))
            batch = np.stack([self._augment(self.images[i], rng) for i in idx])
        else:
            batch = self.images[idx]
        x = normalise(batch, self.normalise_mode, self.channels)
        y = np.eye(self.num_classes, dtype=np.float32)[self.labels[idx]]
        if self.background_grid is not None:
            from core.classifier.focus import background_grid

            return (x, background_grid(batch, self.background_grid)), y
        return x, y

    def on_epoch_end(self) -> None:
        self._epoch += 1
        self._reshuffle()
