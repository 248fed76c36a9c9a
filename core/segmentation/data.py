"""Image + mask pairs, their split by figshare number, and the preprocessing shared by training and
inference.

Layout: ``DIR/images/<class>/<name>.<ext>`` and ``DIR/masks/<class>/<stem>.png`` (0 background,
anything above 127 tumour; any image size, mask the same size as its image). An optional
``DIR/manifest.csv`` (``../shared/datasets/brain-mri-seg``) gives each pair its
``figshare_index``; without it the number is taken from the file name's digits (``fs0715.png``
→ 715), else the file's position in name order.

Split (:func:`index_split`): the source has no patient IDs and stores slices in per-class runs of
the same patient, so held-out slices are contiguous ``figshare_index`` windows per class (test:
the lowest numbers of each class, validation: the highest), and training drops every slice of
the same class within ``margin`` numbers of a held-out window. A tumour type belongs to one
patient, so slices of another class are never the same patient and need no margin.

Preprocessing (:func:`prepare`; recorded in the model card, used by :mod:`.inference` too):
grayscale uint8 → head crop (:func:`core.classifier.preprocess.head_bbox`) → resize to
``size``² → ``[0, 1]``. Masks follow the same crop and resize (area interpolation, then ≥ 0.5).
Predictions go back with :func:`restore`: probabilities resized to the crop box and pasted into
a zero map of the scan's own size.
"""
from __future__ import annotations

import csv
import hashlib
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from core.classifier.preprocess import HeadBox, head_crop_resize, read_gray
from core.imaging.export import IMAGE_SUFFIXES

__all__ = ["PairData", "list_pairs", "fingerprint", "index_split", "preprocessing_config",
           "prepare", "prepare_mask", "restore", "read_gray", "read_mask", "load_pairs",
           "augment_pair", "PairSequence", "DEFAULT_MARGIN", "MANIFEST"]

MANIFEST = "manifest.csv"
# figshare numbers dropped around each held-out window (the data set's README: neighbouring
# numbers are often slices of the same patient and series, about 40 either side is safe).
DEFAULT_MARGIN = 40
_MASK_LEVEL = 127   # mask PNGs are 0/255: anything brighter than this is tumour


@dataclass
class PairData:
    """Image/mask pairs of one folder, sorted by class then name."""
    root: Path
    classes: list[str]
    images: list[Path]
    masks: list[Path]
    labels: np.ndarray                    # index into classes
    index: np.ndarray                     # figshare number (or file-name number / position)
    meta: list[dict] = field(default_factory=list)   # manifest row per pair ({} without one)

    def __len__(self) -> int:
        return len(self.images)

    def counts(self) -> dict[str, int]:
        return {c: int((self.labels == i).sum()) for i, c in enumerate(self.classes)}

    def names(self) -> list[str]:
        return [f"{p.parent.name}/{p.name}" for p in self.images]


def _manifest(root: Path) -> dict[str, dict]:
    path = root / MANIFEST
    if not path.is_file():
        return {}
    with open(path, newline="") as fh:
        return {row.get("id", ""): row for row in csv.DictReader(fh)}


def list_pairs(root: str | Path, classes: Sequence[str] | None = None) -> PairData:
    """Every ``images/<class>/<file>`` with its ``masks/<class>/<stem>.*``; raises ValueError
    naming the first image without a mask."""
    root = Path(root)
    img_root, mask_root = root / "images", root / "masks"
    if not img_root.is_dir() or not mask_root.is_dir():
        raise FileNotFoundError(f"{root}: expected images/<class>/ and masks/<class>/ folders.")
    found = sorted(d.name for d in img_root.iterdir() if d.is_dir() and not d.name.startswith("."))
    classes = list(classes) if classes is not None else found
    manifest = _manifest(root)
    images, masks, labels, index, meta = [], [], [], [], []
    for ci, c in enumerate(classes):
        if not (img_root / c).is_dir():
            continue
        mask_files = {p.stem: p for p in (mask_root / c).glob("*")
                      if p.suffix.lower() in IMAGE_SUFFIXES} if (mask_root / c).is_dir() else {}
        for pos, f in enumerate(sorted((img_root / c).iterdir())):
            if not f.is_file() or f.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            m = mask_files.get(f.stem)
            if m is None:
                raise ValueError(f"{f}: no mask {mask_root / c / (f.stem + '.png')}.")
            row = manifest.get(f.stem, {})
            if row.get("figshare_index", "").strip().isdigit():
                number = int(row["figshare_index"])
            else:
                digits = re.findall(r"\d+", f.stem)
                number = int(digits[-1]) if digits else pos
            images.append(f)
            masks.append(m)
            labels.append(ci)
            index.append(number)
            meta.append(row)
    if not images:
        raise ValueError(f"{root}: no image/mask pairs under images/<class>/.")
    return PairData(root, classes, images, masks, np.asarray(labels, np.int64),
                    np.asarray(index, np.int64), meta)


def fingerprint(data: PairData) -> str:
    """SHA-256 over class/name and byte size of every image and mask (cheap; names the set)."""
    h = hashlib.sha256()
    for img, mask in zip(data.images, data.masks):
        h.update(f"{img.parent.name}/{img.name}:{img.stat().st_size}:"
                 f"{mask.name}:{mask.stat().st_size}\n".encode())
    return "sha256:" + h.hexdigest()


def index_split(index: np.ndarray, labels: np.ndarray, *, val_fraction: float = 0.10,
                test_fraction: float = 0.15, margin: int = DEFAULT_MARGIN
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Positions ``(train, val, test)``: per class, test = the ``test_fraction`` of its slices with
    the lowest numbers, validation = the ``val_fraction`` with the highest; training = the rest
    of the class minus every slice within ``margin`` numbers of either window (inclusive).
    A fraction of 0 gives an empty window."""
    index, labels = np.asarray(index), np.asarray(labels)
    for name, frac in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0 <= frac < 1:
            raise ValueError(f"{name} must be in [0, 1), got {frac!r}.")
    if val_fraction + test_fraction >= 1:
        raise ValueError("val_fraction + test_fraction must stay below 1.")
    train, val, test = [], [], []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        members = members[np.argsort(index[members], kind="stable")]
        n = len(members)
        n_test = int(round(n * test_fraction)) if test_fraction else 0
        n_val = int(round(n * val_fraction)) if val_fraction else 0
        if n_test + n_val >= n:
            raise ValueError(f"class {int(c)}: {n} slices are too few for the requested windows.")
        t, v = members[:n_test], members[n - n_val:] if n_val else members[:0]
        blocked = np.zeros(n, bool)
        for window in (t, v):
            if len(window):
                lo, hi = index[window].min() - margin, index[window].max() + margin
                blocked |= (index[members] >= lo) & (index[members] <= hi)
        train.extend(members[~blocked])
        val.extend(v)
        test.extend(t)
    return tuple(np.sort(np.asarray(a, np.int64)) for a in (train, val, test))


def preprocessing_config(size: int, *, head_crop: bool = True, crop_margin: float = 0.02,
                         mask_threshold: float = 0.5, threshold: float = 0.5,
                         postprocess: str = "none", tta: str = "none") -> dict:
    """The card's ``preprocessing``: ``threshold`` turns probabilities into the mask and
    ``postprocess`` cleans it (:func:`core.segmentation.inference.postprocess_mask`); ``tta``
    ``"hflip"`` averages the maps of the scan and its mirror."""
    return {"head_crop": bool(head_crop), "crop_margin": float(crop_margin),
            "mask_threshold": float(mask_threshold), "size": [int(size), int(size)],
            "interpolation": "area", "normalise": "unit", "channels": 1,
            "threshold": float(threshold), "postprocess": str(postprocess), "tta": str(tta)}


def prepare(image: np.ndarray, config: dict) -> tuple[np.ndarray, HeadBox]:
    """One scan (H×W or H×W×3, any dtype the loader gives) → ``(S×S uint8, crop box)``: the
    classifier's head crop and resize (:func:`core.classifier.preprocess.head_crop_resize`)."""
    return head_crop_resize(image, config)


def prepare_mask(mask: np.ndarray, box: HeadBox, size: int) -> np.ndarray:
    """A boolean/0-1 mask at the scan's size → S×S uint8 0/1 through the same crop."""
    crop = np.asarray(mask, np.float32)[box.y0:box.y1, box.x0:box.x1]
    small = cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA
                       if crop.shape[0] > size or crop.shape[1] > size else cv2.INTER_LINEAR)
    return (small >= 0.5).astype(np.uint8)


def restore(prob: np.ndarray, box: HeadBox, shape: tuple[int, int]) -> np.ndarray:
    """S×S probabilities → float32 map of ``shape`` (zero outside the crop box)."""
    out = np.zeros(shape[:2], np.float32)
    w, h = box.x1 - box.x0, box.y1 - box.y0
    if w > 0 and h > 0:
        out[box.y0:box.y1, box.x0:box.x1] = cv2.resize(
            np.asarray(prob, np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
    return out


def read_mask(path: str | Path) -> np.ndarray:
    """A mask file → H×W bool (pixel > 127 is tumour)."""
    return read_gray(path) > _MASK_LEVEL


def load_pairs(data: PairData, positions: Sequence[int], config: dict
               ) -> tuple[np.ndarray, np.ndarray]:
    """``(N, S, S)`` uint8 images and ``(N, S, S)`` uint8 0/1 masks, preprocessed."""
    size = int(config["size"][0])
    x = np.empty((len(positions), size, size), np.uint8)
    y = np.empty((len(positions), size, size), np.uint8)
    for k, i in enumerate(positions):
        img, mask = read_gray(data.images[i]), read_mask(data.masks[i])
        if img.shape != mask.shape:
            raise ValueError(f"{data.images[i]}: image {img.shape} and mask {mask.shape} differ.")
        x[k], box = prepare(img, config)
        y[k] = prepare_mask(mask, box, size)
    return x, y


def augment_pair(img: np.ndarray, mask: np.ndarray, rng: np.random.Generator, *,
                 max_rotate: float = 15.0, zoom: tuple[float, float] = (0.9, 1.15),
                 max_shift: float = 0.06) -> tuple[np.ndarray, np.ndarray]:
    """One S×S uint8 image and its 0/1 mask → augmented float32 image (0..255) and uint8 mask.
    Geometry (horizontal flip, rotation, zoom, shift) is one affine map applied to both (image
    linear, mask nearest); intensity (gamma, contrast, brightness, light blur) to the image only."""
    s = img.shape[0]
    if rng.random() < 0.5:
        img, mask = img[:, ::-1], mask[:, ::-1]
    m = cv2.getRotationMatrix2D((s / 2 - 0.5, s / 2 - 0.5), rng.uniform(-max_rotate, max_rotate),
                                rng.uniform(*zoom))
    m[:, 2] += rng.uniform(-max_shift, max_shift, size=2) * s
    img = cv2.warpAffine(np.ascontiguousarray(img), m, (s, s), flags=cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    mask = cv2.warpAffine(np.ascontiguousarray(mask), m, (s, s), flags=cv2.INTER_NEAREST,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    if rng.random() < 0.2:
        img = cv2.GaussianBlur(img, (0, 0), sigmaX=rng.uniform(0.3, 0.9))
    x = img.astype(np.float32) / 255.0
    x = np.power(x, rng.uniform(0.8, 1.25))
    x = (x - x.mean()) * rng.uniform(0.85, 1.2) + x.mean()
    x = x * rng.uniform(0.9, 1.1)
    return np.clip(x * 255.0, 0, 255).astype(np.float32), mask.astype(np.uint8)


def _pydataset():
    import keras

    return keras.utils.PyDataset


class PairSequence:
    """Factory for a ``keras.utils.PyDataset`` of ``(x (N,S,S,1) in [0,1], y (N,S,S,1) 0/1)``
    batches; shuffles and augments when ``training`` (created lazily so that importing this
    module never imports Keras)."""

    def __new__(cls, images: np.ndarray, masks: np.ndarray, *, batch_size: int, training: bool,
                seed: int = 0, workers: int = 1):
        base = _pydataset()

        class _Seq(base):
            def __init__(self) -> None:
                super().__init__(workers=workers, use_multiprocessing=False, max_queue_size=8)
                self.images, self.masks = images, masks
                self.batch_size, self.training, self.seed = batch_size, training, seed
                self._epoch = 0
                self._order = np.arange(len(images))
                self._reshuffle()

            def _reshuffle(self) -> None:
                if self.training:
                    self._order = np.random.default_rng((self.seed, self._epoch)).permutation(
                        len(self.images))

            def __len__(self) -> int:
                return math.ceil(len(self.images) / self.batch_size)

            def __getitem__(self, index: int):
                idx = self._order[index * self.batch_size:(index + 1) * self.batch_size]
                if self.training:
                    rng = np.random.default_rng((self.seed, self._epoch, index))
                    pairs = [augment_pair(self.images[i], self.masks[i], rng) for i in idx]
                    x = np.stack([p[0] for p in pairs])
                    y = np.stack([p[1] for p in pairs])
                else:
                    x, y = self.images[idx].astype(np.float32), self.masks[idx]
                return x[..., None] / 255.0, y[..., None].astype(np.float32)

            def on_epoch_end(self) -> None:
                self._epoch += 1
                self._reshuffle()

        return _Seq()
