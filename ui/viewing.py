"""The viewer on the pages: a scan as a viewer panel (its modality-LUT values, HU on CT, with
the window in force), the Analyze view (scan + Grad-CAM heat + tumour outline) and the
Super-resolution comparison (low-res input, original, every method; synchronised, split).

Each page keeps its static images / plotly figures: they are what AppTest sees (it does not run
components), what the downloads are made of, and the fallback when the viewer is switched off
or its bundle is missing."""
from __future__ import annotations

import numpy as np
import streamlit as st

from ui.images import to_uint8
from ui import viewer as _viewer

__all__ = ["viewer_toggle_ui", "viewer_expander", "scan_panel", "analyze_viewer_ui",
           "sr_viewer_ui",
           "study_viewer_ui", "case_viewer_ui", "png_pixels", "ANALYZE_HEIGHT"]

#: Height of the Analyze viewer's image area (px): about the column's width at 1400 px.
ANALYZE_HEIGHT = 620
#: Height of one row of Super-resolution panels (px).
SR_ROW_HEIGHT = 380
_HOW = ("The interactive viewer (Cornerstone3D): wheel or right-drag zooms, left-drag sets "
        "window / level, middle-drag or Shift+drag pans, Ctrl+wheel scrolls frames, "
        "double-click resets; full screen from its toolbar.")
_HELP = _HOW + " Off: the static images only."


def viewer_toggle_ui(key: str) -> bool:
    """The "Interactive viewer" switch (on by default); False, with a note, when the bundle
    is missing."""
    if not _viewer.available():
        st.caption(":grey[The interactive viewer is not built (ui/viewer/build is missing); "
                   "run scripts/build_viewer.sh. Static images are shown instead.]")
        return False
    return st.toggle("Interactive viewer", value=True, key=key, help=_HELP)


def viewer_expander():
    """The container of the Analyze viewer: an "Interactive viewer" expander, open at first.
    Closing and opening it runs in the browser (no rerun: a switch would cost one, more than
    5 % of a first analysis). Without the bundle: a note, and nothing inside."""
    if not _viewer.available():
        box = st.container()
        box.caption(":grey[The interactive viewer is not built (ui/viewer/build is missing); "
                    "run scripts/build_viewer.sh. Static images are shown instead.]")
        return box
    box = st.expander("Interactive viewer", expanded=True, icon=":material/zoom_in:")
    box.caption(_HOW + " Close this section to hide it.")
    return box


def scan_panel(scan, *, label: str = "Scan") -> dict:
    """A viewer panel of a loaded (and windowed) scan.

    Greyscale DICOM and rasters with a linear window: the modality-LUT values (Hounsfield
    units on CT) of every frame the scan kept, with the window in force, so dragging the
    window works in the scan's own units and the read-out shows real values. A VOI LUT table
    or a colour image: the displayed pixels (uint8)."""
    from core.imaging.windowing import is_ct

    values = scan.modality_values
    spacing = scan.pixel_spacing
    if values is not None and not scan.is_color and scan.window is not None:
        values = np.asarray(values)
        frame = scan.frame_index if values.ndim == 3 else 0
        return {"label": label, "pixels": values, "spacing": spacing,
                "window": tuple(scan.window), "unit": "HU" if is_ct(scan) else None,
                "invert": scan.inverted, "frame": frame}
    volume = scan.volume
    pixels = volume if volume is not None else scan.pixels
    return {"label": label, "pixels": to_uint8(pixels), "rgb": bool(scan.is_color),
            "spacing": spacing, "window": (128.0, 256.0),
            "frame": scan.frame_index if volume is not None else 0}


def _tumour_mask(picked):
    """The active segmentation model's mask for this scan (cached), or None."""
    from core.errors import MedScanError
    from ui.segmentation import segment_picked, segmenter

    try:
        model = segmenter()
        return None if model is None else segment_picked(picked, model).mask
    except MedScanError:
        return None


def _all_rgb_if_any(panels: list[dict]) -> None:
    """One colour panel among greyscale ones: show them all as RGB (one viewer mode)."""
    if len({p["rgb"] for p in panels}) > 1:
        for p in panels:
            if not p["rgb"]:
                p["pixels"], p["rgb"] = np.repeat(p["pixels"][..., None], 3, axis=-1), True


def analyze_viewer_ui(picked, shown, *, heatmap: np.ndarray | None = None,
                      cam_label: str = "Grad-CAM") -> None:
    """The scan large, with the Grad-CAM heat map and (with a segmentation model) the tumour
    outline as overlays on the frame they were computed for (nothing without the bundle)."""
    if not _viewer.available():
        return
    panel = scan_panel(shown, label="Scan")
    frame = panel["frame"] if np.ndim(panel["pixels"]) == 3 + bool(panel.get("rgb")) else None
    overlays = []
    on = "" if frame is None else f" · frame {frame + 1}"     # the frame the overlays belong to
    if heatmap is not None:
        overlays.append(_viewer.heat_overlay(heatmap, label=cam_label + on, frame=frame))
        from core.classifier.gradcam import hot_region_bbox

        overlays.append(_viewer.box_overlay(hot_region_bbox(heatmap, threshold=0.5),
                                            label="Grad-CAM box" + on, frame=frame,
                                            visible=False))
        mask = _tumour_mask(picked)
        if mask is not None:
            overlays.append(_viewer.outline_overlay(mask, label="Tumour outline" + on,
                                                    frame=frame))
    panel["overlays"] = overlays
    _viewer.viewer([panel], height=ANALYZE_HEIGHT, key="analyze_viewer_view")
    if frame is not None and overlays:
        st.caption(f"Overlays belong to frame {frame + 1} (the one analysed); scroll frames "
                   "with Ctrl+wheel or the viewer's slider, choose the analysed frame with "
                   "the Frame slider above.")


def sr_viewer_ui(result, scan, labels: dict[str, str]) -> None:
    """The low-res input, the original (simulate mode) and each method's output, zooming,
    panning and windowing together; a split comparison of any two (opened on the original
    against the last method in simulate mode, the input against it in enhance mode)."""
    scale = result.scale
    s = scan.pixel_spacing
    simulate = result.mode == "simulate" and result.hr is not None
    hr_spacing = (s if simulate else (s[0] / scale, s[1] / scale)) if s else None
    lr_spacing = (hr_spacing[0] * scale, hr_spacing[1] * scale) if hr_spacing else None

    def panel(label, image, spacing, pixel_size=1.0, smooth=True):
        img = to_uint8(image)
        return {"label": label, "pixels": img, "rgb": img.ndim == 3, "spacing": spacing,
                "pixel_size": pixel_size, "window": (128.0, 256.0), "smooth": smooth}

    lr_h, lr_w = result.lr.shape[:2]
    panels = [panel(f"Low-res input ({lr_w}×{lr_h})", result.lr, lr_spacing, float(scale),
                    smooth=False)]
    if simulate:
        panels.append(panel("Original (reference)", result.hr, hr_spacing))
    for m, out in result.outputs.items():
        panels.append(panel(labels.get(m, m), out, hr_spacing))
    _all_rgb_if_any(panels)
    cols = min(len(panels), 3)
    rows = -(-len(panels) // cols)
    compare = (1 if simulate else 0, len(panels) - 1)
    _viewer.viewer(panels, sync=True, compare=compare, mode="grid", columns=cols,
                   height=rows * SR_ROW_HEIGHT, key="sr_viewer_view")
    st.caption("All panels zoom, pan and window together; **Split** compares any two (the "
               "original included) with a divider you drag. The low-res input is shown with "
               "its real pixels (nearest neighbour), at the size of the outputs.")


def png_pixels(png: bytes) -> tuple[np.ndarray, bool]:
    """(pixels, rgb) of a stored PNG: greyscale stays 2-D (8 or 16 bit), colour becomes RGB."""
    import cv2

    img = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise ValueError("not a readable PNG")
    if img.ndim == 3 and img.shape[2] == 4:
        img = img[..., :3]
    if img.ndim == 3:
        if (img[..., 0] == img[..., 1]).all() and (img[..., 1] == img[..., 2]).all():
            return img[..., 0], False
        return img[..., ::-1], True
    return img, False


def study_viewer_ui(image_png: bytes, reference_png: bytes | None, *, height: int = 460) -> None:
    """A reader-study item in the viewer: the image to rate and (side-by-side studies) the
    unnamed reference, zooming and windowing together. Labels never name a method."""
    panels = []
    for label, png in (("Reference", reference_png), ("Image to rate", image_png)):
        if png is None:
            continue
        pixels, rgb = png_pixels(png)
        panels.append({"label": label, "pixels": pixels, "rgb": rgb})
    _all_rgb_if_any(panels)
    shapes = [p["pixels"].shape[:2] for p in panels]
    if len(panels) == 2 and shapes[0] != shapes[1]:     # the same field of view either way
        panels[0]["pixel_size"] = shapes[1][1] / shapes[0][1]
    _viewer.viewer(panels, sync=True, columns=len(panels), height=height,
                   key="study_viewer_view")
    st.caption(("Reference (left) and the image to rate (right), moving together; **Split** "
                "puts them on one view. " if len(panels) == 2 else "")
               + "Click outside the viewer to use the keyboard shortcuts again.")


def case_viewer_ui(pixels: np.ndarray, *, label: str, bit_depth: int, caption: str,
                   height: int = 520) -> None:
    """A case-library image (float [0, 1] from ``core.library.cases.case_pixels``) in the
    viewer with its stored values (8 or 16 bit), so the read-out shows what is stored."""
    top = 65535.0 if bit_depth > 8 else 255.0
    stored = np.round(np.clip(pixels, 0.0, 1.0) * top).astype(np.uint16 if bit_depth > 8
                                                               else np.uint8)
    _viewer.viewer([{"label": label, "pixels": stored, "rgb": stored.ndim == 3}],
                   height=height, key="library_viewer_view")
    st.caption(caption)
