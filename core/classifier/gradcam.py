"""Grad-CAM (Selvaraju et al., ICCV 2017) and Grad-CAM++ (Chattopadhay et al., WACV 2018).

Pure functions: :func:`cam_from_gradients` turns the target layer's activations ``A`` (h, w, k)
and the gradients of the class score (the *logit*, before softmax) ``dY/dA`` into a map in
[0, 1]; upsampling to the scan and colouring are separate (:func:`place_in_scan`,
:func:`overlay_heatmap`). The gradient sub-model that yields activations and logits in one forward
pass is built once by :class:`core.classifier.inference.Classifier`; the loaded model is never
mutated.
"""
from __future__ import annotations

from collections.abc import Mapping

import cv2
import numpy as np

__all__ = ["METHODS", "cam_from_gradients", "average_maps", "place_in_scan", "ScanMaps",
           "overlay_heatmap",
           "jet_colours",
           "hot_region_bbox", "mass_outside"]

METHODS = ("gradcam", "gradcam++")
_EPS = 1e-12


def cam_from_gradients(activations: np.ndarray, grads: np.ndarray, method: str = "gradcam"
                       ) -> np.ndarray:
    """(h, w, k) activations and gradients -> (h, w) map in [0, 1] (all zeros if no positive
    evidence).

    Grad-CAM: weights ``a_k = mean_ij dY/dA_ij^k``; map ``ReLU(sum_k a_k A^k)``.
    Grad-CAM++: ``a_ij^k = g^2 / (2 g^2 + sum_ab A_ab^k g^3)`` (exponential-score closed form),
    weights ``w_k = sum_ij a_ij^k ReLU(g_ij^k)``.
    """
    a = np.asarray(activations, np.float64)
    g = np.asarray(grads, np.float64)
    if a.shape != g.shape or a.ndim != 3:
        raise ValueError(f"activations {a.shape} and gradients {g.shape} must be equal (h, w, k).")
    if method == "gradcam":
        weights = g.mean(axis=(0, 1))
    elif method == "gradcam++":
        g2, g3 = g ** 2, g ** 3
        denom = 2 * g2 + a.sum(axis=(0, 1), keepdims=True) * g3
        alpha = np.where(np.abs(denom) > _EPS, g2 / np.where(np.abs(denom) > _EPS, denom, 1), 0)
        weights = (alpha * np.maximum(g, 0)).sum(axis=(0, 1))
    else:
        raise ValueError(f"Unknown CAM method {method!r}; expected one of {METHODS}.")
    cam = np.maximum((a * weights).sum(axis=-1), 0)
    peak = cam.max()
    return (cam / peak if peak > _EPS else np.zeros_like(cam)).astype(np.float32)


def average_maps(cams) -> np.ndarray:
    """The mean of model-space maps (an ensemble's members'), each as
    :func:`cam_from_gradients` normalised it; maps of another size are first resized
    (bilinear) to the largest. One map is returned as it is."""
    cams = [np.asarray(c, np.float32) for c in cams]
    if not cams:
        raise ValueError("average_maps needs at least one map.")
    if len(cams) == 1:
        return cams[0]
    h, w = max(c.shape for c in cams)
    same = [c if c.shape == (h, w) else
            cv2.resize(c, (w, h), interpolation=cv2.INTER_LINEAR) for c in cams]
    return np.clip(np.mean(same, axis=0), 0.0, 1.0).astype(np.float32)


def place_in_scan(cam: np.ndarray, box, scan_shape: tuple[int, int]) -> np.ndarray:
    """Upsample a model-space map (bilinear) into the crop ``box`` (x0, y0, x1, y1 or HeadBox)
    of an H×W scan; zero outside the box (the model never saw those pixels). Values in [0, 1]."""
    x0, y0, x1, y1 = (box.x0, box.y0, box.x1, box.y1) if hasattr(box, "x0") else box
    h, w = int(scan_shape[0]), int(scan_shape[1])
    out = np.zeros((h, w), np.float32)
    if x1 > x0 and y1 > y0:
        up = cv2.resize(np.asarray(cam, np.float32), (x1 - x0, y1 - y0),
                        interpolation=cv2.INTER_LINEAR)
        out[y0:y1, x0:x1] = np.clip(up, 0.0, 1.0)
    return out


class ScanMaps(Mapping):
    """Model-space maps, each placed in the scan (:func:`place_in_scan`) when read: a mapping
    ``{key: H×W map}`` that stays as small as the model's maps (a cache can hold many scans'
    maps of every class and method; eight full-size 2048² maps would be 128 MB)."""

    def __init__(self, cams: dict, box, scan_shape: tuple[int, int]):
        self._cams = {k: np.asarray(v, np.float32) for k, v in cams.items()}
        self._box = box
        self._shape = (int(scan_shape[0]), int(scan_shape[1]))

    def __getitem__(self, key) -> np.ndarray:
        return place_in_scan(self._cams[key], self._box, self._shape)

    def __iter__(self):
        return iter(self._cams)

    def __len__(self) -> int:
        return len(self._cams)


def overlay_heatmap(image_uint8: np.ndarray, heatmap: np.ndarray, alpha: float = 0.4
                    ) -> np.ndarray:
    """Jet-coloured heatmap blended over the scan: RGB uint8 H×W×3. ``alpha`` in [0, 1] is the
    heatmap's opacity; the map is resized to the image if their sizes differ."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha!r}.")
    img = np.asarray(image_uint8)
    if img.dtype != np.uint8:
        raise ValueError(f"image must be uint8, got {img.dtype}.")
    rgb = np.repeat(img[..., None], 3, axis=-1) if img.ndim == 2 else img[..., :3]
    return cv2.addWeighted(rgb, 1.0 - alpha, jet_colours(heatmap, rgb.shape[:2]), alpha, 0.0)


def jet_colours(heatmap: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A [0, 1] map resized (bilinear) to ``shape`` (H, W) and coloured with OpenCV's jet
    table: RGB uint8 H×W×3, what :func:`overlay_heatmap` blends (and the app's overlay picture
    draws as its own layer)."""
    hm = np.asarray(heatmap, np.float32)
    if hm.shape != tuple(shape):
        hm = cv2.resize(hm, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)
    colour = cv2.applyColorMap((np.clip(hm, 0, 1) * 255).astype(np.uint8), cv2.COLORMAP_JET)
    return cv2.cvtColor(colour, cv2.COLOR_BGR2RGB)


def hot_region_bbox(heatmap: np.ndarray, threshold: float = 0.5
                    ) -> tuple[int, int, int, int] | None:
    """Bounding box ``(x0, y0, x1, y1)`` (half-open) of the connected region of
    ``heatmap >= threshold`` that contains the peak; None for an all-zero map."""
    hm = np.asarray(heatmap, np.float32)
    if hm.size == 0 or hm.max() <= 0:
        return None
    mask = (hm >= threshold * hm.max()).astype(np.uint8)
    _, labels = cv2.connectedComponents(mask, connectivity=8)
    peak = np.unravel_index(int(np.argmax(hm)), hm.shape)
    ys, xs = np.nonzero(labels == labels[peak])
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def mass_outside(heatmap: np.ndarray, inside: np.ndarray) -> float:
    """Share of the map's total mass on pixels where ``inside`` is False (e.g. background
    outside the head). 0 for an all-zero map."""
    hm = np.asarray(heatmap, np.float64)
    if hm.shape != inside.shape:
        raise ValueError(f"heatmap {hm.shape} and mask {inside.shape} differ in shape.")
    total = hm.sum()
    return float(hm[~inside].sum() / total) if total > 0 else 0.0
