"""The MedScan image viewer: a Streamlit custom component on Cornerstone3D (the engine of the
OHIF viewer).

``viewer(panels=[...])`` shows one or more images large, with zoom (wheel, right-drag), pan
(middle-drag, Shift+drag), window / level by left-drag with the values shown, a reset, full
screen, frame scrolling (slider, Ctrl+wheel), overlays with opacity (a Grad-CAM heat map in
colour, outlines), a pixel read-out (value, and position in mm when the panel has a pixel
spacing), panels that zoom / pan / window together (Cornerstone3D synchronizers) and a split
comparison of any two panels whose divider follows the mouse.

The browser receives display-ready pixel arrays and the labels the page chose: never a DICOM
file, header or file name. Arrays travel as one zlib-compressed ``bytes`` argument; nothing the
viewer does sets a component value, so using it never reruns the page.

The frontend lives in ``ui/viewer/frontend`` (TypeScript); its bundle in ``ui/viewer/build``
is committed, so running the app needs no Node. Rebuild it with ``scripts/build_viewer.sh``.
"""
from __future__ import annotations

import hashlib
import json
import zlib
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["BUILD_DIR", "available", "viewer", "encode", "heat_overlay", "outline_overlay",
           "box_overlay", "default_window", "MAX_VOXELS"]

BUILD_DIR = Path(__file__).resolve().parent / "build"
#: Voxels one viewer call may send (all panels and frames; 24 Mi ≈ 48 MB of int16 before
#: compression). A larger multi-frame panel is sent as its current frame only.
MAX_VOXELS = 24 * 1024 * 1024
_ZLIB_LEVEL = 6          # zlib's default: ~5 ms per 512² int16 frame, about 2:1 on scans
_ENCODED: OrderedDict[tuple, tuple[dict, bytes]] = OrderedDict()   # array digest → encoding
_ENCODED_MAX = 32


def available() -> bool:
    """Whether the built bundle is present (else pages show their static fallback)."""
    return all((BUILD_DIR / f).is_file() for f in ("index.html", "viewer.js", "viewer.css"))


# ---- overlays ---------------------------------------------------------------------------------

def _jet_lut() -> list[int]:
    """OpenCV's JET colour map as 256 RGB triples (flattened): the same colours as the static
    Grad-CAM overlay (:func:`core.classifier.gradcam.overlay_heatmap`)."""
    import cv2

    bgr = cv2.applyColorMap(np.arange(256, dtype=np.uint8)[:, None], cv2.COLORMAP_JET)[:, 0]
    return bgr[:, ::-1].astype(int).ravel().tolist()


def heat_overlay(heat: np.ndarray, *, label: str = "Grad-CAM", opacity: float = 0.4,
                 frame: int | None = None, visible: bool = True) -> dict:
    """A heat map in [0, 1] (any size; it is stretched over the whole image) drawn in the JET
    colours at ``opacity``. ``frame``: the only frame it belongs to (None: every frame)."""
    h = np.asarray(heat, dtype=np.float32)
    if h.ndim != 2:
        raise ValueError(f"a heat overlay is a 2-D map, got shape {h.shape}")
    values = (np.clip(np.nan_to_num(h), 0.0, 1.0) * 255).round().astype(np.uint8)
    return {"kind": "heat", "label": label, "values": values, "opacity": float(opacity),
            "visible": bool(visible), "frame": frame}


def outline_overlay(mask: np.ndarray, *, label: str = "Tumour outline", color: str = "#ffd700",
                    width: float = 2.0, frame: int | None = None, visible: bool = True,
                    opacity: float = 1.0) -> dict:
    """The outline of a binary mask as polygons (pixel-centre coordinates), drawn as lines of
    ``width`` screen pixels: sharp at any zoom."""
    import cv2

    m = np.ascontiguousarray(np.asarray(mask) > 0, dtype=np.uint8)
    if m.ndim != 2:
        raise ValueError(f"an outline needs a 2-D mask, got shape {m.shape}")
    contours, _ = cv2.findContours(m, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    paths = [c[:, 0, :].astype(int).tolist() for c in contours if len(c)]
    return {"kind": "contours", "label": label, "paths": paths, "closed": True, "color": color,
            "width": float(width), "opacity": float(opacity), "visible": bool(visible),
            "frame": frame}


def box_overlay(box: Sequence[int] | None, *, label: str, color: str = "#ff00ff",
                width: float = 2.0, frame: int | None = None, visible: bool = True) -> dict:
    """A half-open box ``(x0, y0, x1, y1)`` in pixels as a rectangle (nothing when None)."""
    paths = []
    if box is not None:
        x0, y0, x1, y1 = (float(v) - 0.5 for v in box)   # pixel edges, as pixel-centre coords
        paths = [[[x0, y0], [x1, y0], [x1, y1], [x0, y1]]]
    return {"kind": "contours", "label": label, "paths": paths, "closed": True, "color": color,
            "width": float(width), "opacity": 1.0, "visible": bool(visible), "frame": frame}


# ---- encoding ---------------------------------------------------------------------------------

def _compact(pixels: np.ndarray) -> np.ndarray:
    """The smallest of uint8 / int16 / uint16 / float32 that holds ``pixels`` exactly."""
    a = np.asarray(pixels)
    if a.dtype == bool:
        return a.astype(np.uint8)
    if a.dtype == np.uint8:
        return a
    if a.size == 0:
        return a.astype(np.uint8)
    if a.dtype.kind == "f":
        finite = np.isfinite(a)
        if not finite.all():
            a = np.where(finite, a, np.nanmin(np.where(finite, a, np.nan)) if finite.any() else 0)
        if not np.array_equal(a, np.round(a)):
            return a.astype(np.float32)
    lo, hi = float(a.min()), float(a.max())
    for dtype in (np.uint8, np.int16, np.uint16):
        info = np.iinfo(dtype)
        if info.min <= lo and hi <= info.max:
            return a.astype(dtype)
    return a.astype(np.float32)


def default_window(pixels: np.ndarray) -> tuple[float, float]:
    """(centre, width) showing every value: 0–255 for 8-bit images, else min–max (DICOM
    LINEAR: centre − 0.5 ± (width − 1) / 2 reaches the extremes)."""
    a = np.asarray(pixels)
    if a.dtype == np.uint8 or a.dtype == bool:
        return 128.0, 256.0
    lo, hi = float(np.nanmin(a)), float(np.nanmax(a))
    if not np.isfinite(lo) or not np.isfinite(hi):
        return 0.5, 1.0
    width = max(hi - lo + 1.0, 1.0)
    return (lo + hi + 1.0) / 2.0, width


def _digest(a: np.ndarray) -> str:
    a = np.ascontiguousarray(a)
    return hashlib.blake2b(a.view(np.uint8).reshape(-1), digest_size=16).hexdigest() + (
        f":{a.dtype.str}:{a.shape}")


def _pack(a: np.ndarray) -> tuple[dict, bytes]:
    """``({dtype, shape, encoding}, compressed bytes)`` of an array, memoised by content."""
    key = (_digest(a),)
    hit = _ENCODED.get(key)
    if hit is not None:
        _ENCODED.move_to_end(key)
        return hit
    a = np.ascontiguousarray(a)
    if a.dtype.byteorder == ">":
        a = a.astype(a.dtype.newbyteorder("<"))
    ref = {"dtype": a.dtype.name, "shape": list(a.shape), "encoding": "zlib"}
    packed = (ref, zlib.compress(a.tobytes(), _ZLIB_LEVEL))
    _ENCODED[key] = packed
    while len(_ENCODED) > _ENCODED_MAX:
        _ENCODED.popitem(last=False)
    return packed


def _frames(panel: Mapping[str, Any]) -> tuple[np.ndarray, int]:
    """(N × H × W [× 3] array, initial frame) of a panel's pixels."""
    px = np.asarray(panel["pixels"])
    rgb = bool(panel.get("rgb", False))
    base = 3 if rgb else 2
    if px.ndim == base:
        px = px[None]
    if px.ndim != base + 1 or (rgb and px.shape[-1] != 3):
        raise ValueError(f"panel {panel.get('label')!r}: pixels of shape {px.shape} are not "
                         f"{'(frames ×) rows × columns × 3' if rgb else '(frames ×) rows × columns'}")
    frame = int(panel.get("frame") or 0)
    if not 0 <= frame < px.shape[0]:
        raise ValueError(f"panel {panel.get('label')!r}: frame {frame} of {px.shape[0]}")
    return px, frame


def encode(panels: Sequence[Mapping[str, Any]], *, sync: bool = True,
           compare: tuple[int, int] | None = None, height: int = 600,
           columns: int | None = None, mode: str | None = None) -> tuple[dict, bytes]:
    """The component's JSON arguments and its ``data`` bytes (see ``frontend/src/spec.ts``).

    Each panel: ``label``; ``pixels`` (rows × columns, or frames × rows × columns; with
    ``rgb=True`` a trailing axis of 3); optional ``spacing`` (row, column) in mm; ``pixel_size``
    (display size of a pixel relative to the others when there is no spacing, e.g. 4 for a
    ×4-smaller input next to its outputs); ``window`` (centre, width) in the pixels' units;
    ``unit`` (e.g. "HU"); ``invert`` (MONOCHROME1); ``frame`` (initial); ``smooth`` (False:
    nearest-neighbour); ``overlays`` (from :func:`heat_overlay`, :func:`outline_overlay`,
    :func:`box_overlay`)."""
    if not panels:
        raise ValueError("the viewer needs at least one panel")
    blob = bytearray()
    specs: list[dict] = []
    total = sum(int(np.prod(np.shape(p["pixels"]))) for p in panels)

    def add(a: np.ndarray) -> dict:
        ref, data = _pack(a)
        out = {**ref, "offset": len(blob), "length": len(data)}
        blob.extend(data)
        return out

    lut = None
    for i, p in enumerate(panels):
        px, frame = _frames(p)
        if total > MAX_VOXELS and px.shape[0] > 1:
            px, frame = px[frame:frame + 1], 0          # too much to send: the current frame
        values = _compact(px)
        window = p.get("window") or default_window(values)
        spacing = p.get("spacing")
        overlays = []
        for o in p.get("overlays") or ():
            o = dict(o)
            if o.get("frame") is not None and values.shape[0] == 1:
                o["frame"] = None if o["frame"] == int(p.get("frame") or 0) else -1
            if o["kind"] == "heat":
                lut = lut or _jet_lut()
                o["array"] = add(o.pop("values"))
                o["colormap"] = lut
            overlays.append(o)
        specs.append({
            "label": str(p.get("label") or f"Panel {i + 1}"),
            "array": add(values),
            "spacing": [float(spacing[0]), float(spacing[1])] if spacing else None,
            "pixel_size": float(p.get("pixel_size") or 1.0),
            "window": [float(window[0]), float(window[1])],
            "invert": bool(p.get("invert", False)),
            "unit": p.get("unit"),
            "frame": frame,
            "smooth": bool(p.get("smooth", True)),
            "overlays": overlays,
        })
    if compare is not None:
        a, b = (int(v) for v in compare)
        if not (0 <= a < len(specs) and 0 <= b < len(specs)) or a == b:
            raise ValueError(f"compare={compare!r}: two different panels of {len(specs)}")
    # What identifies the pixels and overlays (not the window, opacity or visibility, which
    # the viewer applies without reloading): the same id keeps the user's zoom and pan.
    identity = [{k: v for k, v in s.items() if k not in ("window", "frame")}
                | {"overlays": [{k: v for k, v in o.items()
                                 if k not in ("opacity", "visible", "colormap")}
                                for o in s["overlays"]]} for s in specs]
    data_id = hashlib.sha256(bytes(blob) + json.dumps(identity, sort_keys=True).encode()
                             ).hexdigest()[:24]
    args = {"version": 1, "data_id": data_id, "panels": specs, "sync": bool(sync),
            "compare": list(compare) if compare is not None else None,
            "mode": mode or ("split" if compare is not None else "grid"),
            "height": int(height), "columns": int(columns or min(len(specs), 3))}
    return args, bytes(blob)


def viewer(panels: Sequence[Mapping[str, Any]], *, sync: bool = True,
           compare: tuple[int, int] | None = None, height: int = 600,
           columns: int | None = None, mode: str | None = None, key: str | None = None) -> None:
    """Show ``panels`` in the viewer (see :func:`encode` for a panel's keys). ``sync``: zoom,
    pan and window move together; ``compare``: open the split comparison of these two panels
    (indexes; the viewer's toolbar can switch to any other two); ``height``: of the image
    area in pixels (the toolbar and read-out come on top); ``columns``: panels per row."""
    from streamlit.components.v1 import declare_component

    args, data = encode(panels, sync=sync, compare=compare, height=height, columns=columns,
                        mode=mode)
    component = declare_component("medscan_viewer", path=str(BUILD_DIR))
    component(**args, data=data, key=key, default=None)
