"""The Analyze page's Grad-CAM picture: the scan with the heat map over it, an opacity slider
and the box around the hottest region, and its PNG download.

The opacity slider and the box switch are part of the plotly figure and run in the browser:
moving them reruns nothing and sends nothing (a Streamlit widget costs a rerun of at least
50-70 ms here, whatever it redraws). The figure is cached by what it shows, so a rerun for
another reason resends it as a reference only."""
from __future__ import annotations

import numpy as np
import streamlit as st

from ui.figure_cache import cached_view, digest

__all__ = ["gradcam_view", "gradcam_figure", "BOX_HELP", "DOWNLOAD_OPACITY"]

BOX_HELP = ("Outline the connected region where the map is at least 50 % of its maximum.")
#: The opacity of the downloaded overlay (the picture's starting opacity).
DOWNLOAD_OPACITY = 0.4
_CAM_BOX = (255, 0, 255)      # Grad-CAM box: magenta, as under "Tumour segmentation"


def gradcam_figure(display: np.ndarray, heatmap: np.ndarray, *, explained: str):
    """The plotly picture: scan, jet heat map at :data:`DOWNLOAD_OPACITY` with a client-side
    opacity slider, and the hottest-region box (off until switched on)."""
    from core.classifier.gradcam import hot_region_bbox
    from ui.plots import overlay_picture

    return overlay_picture(
        display, heat=heatmap, opacity=DOWNLOAD_OPACITY, heat_name="Overlay",
        boxes=[dict(name=f"Grad-CAM box ({explained})", colour=_CAM_BOX, group="box",
                    box=hot_region_bbox(heatmap, threshold=0.5))],
        toggles=[dict(group="box", label="Grad-CAM box", on=False)])


def gradcam_view(display: np.ndarray, heatmap: np.ndarray, *, explained: str, method: str,
                 out_of_distribution: bool, file_stem: str) -> None:
    """``display``: the windowed scan as shown (uint8); ``heatmap`` in [0, 1]; ``explained``:
    the class the map explains."""
    from core.classifier.gradcam import overlay_heatmap
    from ui.images import png_bytes, to_rgb
    from ui.plots import PICTURE_CONFIG

    key = digest(display, np.asarray(heatmap, np.float32))
    fig = cached_view("gradcam_picture", key, explained,
                      build=lambda: gradcam_figure(display, heatmap, explained=explained))
    st.plotly_chart(fig, width="stretch", key="cam_picture", config=PICTURE_CONFIG)
    st.caption(f"Grad-CAM for “{explained}” ({method}). Scroll or drag to zoom, double-click "
               f"to reset. Box: {BOX_HELP[:1].lower()}{BOX_HELP[1:]}")
    if out_of_distribution:
        st.caption(":grey[Out of distribution: this map shows where a model that should not be "
                   "trusted on this scan looked for that class; it is not evidence of it.]")
    png = cached_view("gradcam_png", key, explained, build=lambda: png_bytes(
        overlay_heatmap(to_rgb(display), heatmap, DOWNLOAD_OPACITY)))
    st.download_button(f"Download overlay (PNG, {DOWNLOAD_OPACITY:.0%} opacity)", png,
                       key="download_overlay", file_name=f"{file_stem}_gradcam_{explained}.png",
                       mime="image/png", on_click="ignore", icon=":material/download:")
