"""Tumour segmentation of one scan with a registry version: mask, size, bounding box.

:class:`Segmenter` wraps the U-Net and its card: the card's ``preprocessing`` (head crop, size,
threshold) is applied exactly as in training (:func:`core.segmentation.data.prepare`), the
probability map is restored to the scan's own size (:func:`core.segmentation.data.restore`), and
everything reported (pixel count, area, box) is measured at that size.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.errors import ModelCardError
from core.segmentation import TASK
from core.segmentation.data import prepare, restore
from core.segmentation.metrics import mask_bbox

__all__ = ["Segmentation", "Segmenter", "POSTPROCESS", "TTA_MODES", "postprocess_mask",
           "area_mm2", "contour_overlay", "mask_png"]

_BATCH = 16
#: How a thresholded mask is cleaned (the card's ``preprocessing.postprocess``).
POSTPROCESS = ("none", "largest_component")
#: Test-time augmentation (the card's ``preprocessing.tta``): ``hflip`` averages the
#: probabilities of the scan and its left-right mirror.
TTA_MODES = ("none", "hflip")


@dataclass
class Segmentation:
    """One scan's result; all sizes at the scan's own resolution."""
    mask: np.ndarray                  # H×W bool
    probability: np.ndarray           # H×W float32 in [0, 1]
    threshold: float
    pixel_spacing: tuple[float, float] | None = None   # (row, column) mm, DICOM (0028,0030)

    @property
    def tumour_pixels(self) -> int:
        return int(self.mask.sum())

    @property
    def area_mm2(self) -> float | None:
        return area_mm2(self.tumour_pixels, self.pixel_spacing)

    @property
    def bbox(self) -> list[int] | None:
        """``[x0, y0, x1, y1]`` half-open, scan pixels; None for an empty mask."""
        return mask_bbox(self.mask)

    @property
    def max_probability(self) -> float:
        return float(self.probability.max()) if self.probability.size else 0.0

    @property
    def empty(self) -> bool:
        return self.tumour_pixels == 0

    def summary(self) -> dict:
        """The JSON fields of ``python -m core segment`` (without ``file``)."""
        area = self.area_mm2
        return {"tumour_pixels": self.tumour_pixels,
                "area_mm2": None if area is None else round(area, 2),
                "bbox": self.bbox, "max_probability": round(self.max_probability, 4)}


def postprocess_mask(mask: np.ndarray, how: str = "none") -> np.ndarray:
    """``"none"``: ``mask`` as is; ``"largest_component"``: only its largest 8-connected
    region (a slice of these data holds one tumour; small islands are false positives)."""
    mask = np.asarray(mask, bool)
    if how == "none" or not mask.any():
        return mask
    if how != "largest_component":
        raise ValueError(f"Unknown postprocess {how!r}; expected one of {', '.join(POSTPROCESS)}.")
    import cv2

    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if n <= 2:
        return mask
    return labels == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))


def area_mm2(pixels: int, spacing: tuple[float, float] | None) -> float | None:
    """``pixels`` × row spacing × column spacing (mm²); None without a pixel spacing."""
    if not spacing:
        return None
    return float(pixels) * float(spacing[0]) * float(spacing[1])


class Segmenter:
    """A loaded segmentation version. Load once (``st.cache_resource`` in the app)."""

    def __init__(self, model, card: dict) -> None:
        self.model, self.card = model, card
        self.version: str = card["version"]
        self.preprocessing: dict = card["preprocessing"]
        self.threshold = float(self.preprocessing.get("threshold", 0.5))
        self.postprocess = str(self.preprocessing.get("postprocess", "none"))
        self.tta = str(self.preprocessing.get("tta", "none"))
        if self.tta not in TTA_MODES:
            raise ModelCardError(f"Model card: unknown tta {self.tta!r}; expected one of "
                                 f"{', '.join(TTA_MODES)}.")
        if self.postprocess not in POSTPROCESS:
            raise ModelCardError(f"Model card: unknown postprocess {self.postprocess!r}; "
                                 f"expected one of {', '.join(POSTPROCESS)}.")
        self.input_size = int(card["input_size"])

    @classmethod
    def load(cls, version: str | None = None, *, weights_dir: str | Path | None = None
             ) -> "Segmenter":
        from core import registry

        model, card = registry.load_model(TASK, version, weights_dir=weights_dir)
        return cls(model, card)

    def probabilities(self, images: list[np.ndarray]) -> list[np.ndarray]:
        """Scans (each H×W / H×W×3, any size) → probability maps at each scan's own size."""
        import keras

        out = []
        for start in range(0, len(images), _BATCH):
            chunk = images[start:start + _BATCH]
            prepared = [prepare(img, self.preprocessing) for img in chunk]
            x = np.stack([p[0] for p in prepared]).astype(np.float32)[..., None] / 255.0
            prob = np.asarray(keras.ops.convert_to_numpy(self.model(x, training=False)))[..., 0]
            if self.tta == "hflip":   # mean of the scan's and its mirror's maps
                flipped = self.model(np.ascontiguousarray(x[:, :, ::-1]), training=False)
                prob = (prob + np.asarray(keras.ops.convert_to_numpy(flipped))[:, :, ::-1, 0]) / 2
            for img, (_, box), p in zip(chunk, prepared, prob):
                out.append(restore(p, box, np.asarray(img).shape[:2]))
        return out

    def mask_from_prob(self, prob: np.ndarray) -> np.ndarray:
        """Probability map → bool mask: ≥ the card's threshold, then its ``postprocess``."""
        return postprocess_mask(prob >= self.threshold, self.postprocess)

    def segment(self, pixels: np.ndarray, pixel_spacing: tuple[float, float] | None = None
                ) -> Segmentation:
        """One scan → :class:`Segmentation` (mask = :meth:`mask_from_prob`)."""
        prob = self.probabilities([pixels])[0]
        return Segmentation(self.mask_from_prob(prob), prob, self.threshold,
                            tuple(pixel_spacing) if pixel_spacing else None)

    def segment_scan(self, scan) -> Segmentation:
        """A :class:`core.imaging.Scan` → :class:`Segmentation` (its pixel spacing is used)."""
        return self.segment(scan.pixels, scan.pixel_spacing)


def mask_png(mask: np.ndarray) -> np.ndarray:
    """H×W bool → uint8 0/255 (what ``--out MASK.png`` writes)."""
    return np.asarray(mask, bool).astype(np.uint8) * 255


def contour_overlay(base_u8: np.ndarray, mask: np.ndarray, *, color=(255, 215, 0),
                    thickness: int | None = None, box: list[int] | None = None,
                    box_color=(0, 255, 0)) -> np.ndarray:
    """The mask's outline drawn over the scan: H×W(×3) uint8 → H×W×3 uint8 RGB. ``box``
    (``[x0, y0, x1, y1]`` half-open) is drawn as a rectangle when given."""
    import cv2

    base = np.asarray(base_u8)
    rgb = np.repeat(base[..., None], 3, axis=-1) if base.ndim == 2 else base[..., :3].copy()
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    t = thickness or max(1, round(max(rgb.shape[:2]) / 256))
    contours, _ = cv2.findContours(np.asarray(mask, np.uint8), cv2.RETR_EXTERNAL,
                                   cv2.CHAIN_APPROX_NONE)
    cv2.drawContours(rgb, contours, -1, color, t)
    if box is not None:
        cv2.rectangle(rgb, (box[0], box[1]), (box[2] - 1, box[3] - 1), box_color, t)
    return rgb
