"""The Analyze page's Grad-CAM picture: the scan with the heat map over it at a chosen opacity,
optionally the box around the hottest region, and its PNG download.

It is an ``st.fragment``: moving the opacity slider or the box switch reruns and resends this
picture only (one image, served as a media URL), not the page: no model, no other figure, no
database query runs again."""
from __future__ import annotations

import numpy as np
import streamlit as st

from ui.images import draw_box, png_bytes, to_rgb

__all__ = ["gradcam_view_fragment", "BOX_HELP"]

BOX_HELP = ("Outline the connected region where the map is at least 50 % of its maximum.")


@st.fragment
def gradcam_view_fragment(display: np.ndarray, heatmap: np.ndarray, *, explained: str,
                          method: str, out_of_distribution: bool, file_stem: str) -> None:
    """``display``: the windowed scan as shown (uint8); ``heatmap`` in [0, 1]; ``explained``:
    the class the map explains."""
    from core.classifier.gradcam import hot_region_bbox, overlay_heatmap

    alpha = st.slider("Overlay opacity", 0.0, 1.0, 0.4, 0.05, key="cam_opacity")
    show_box = st.toggle("Grad-CAM box (hottest region)", key="cam_box", help=BOX_HELP)
    overlay = overlay_heatmap(to_rgb(display), heatmap, alpha)
    if show_box:
        overlay = draw_box(overlay, hot_region_bbox(heatmap, threshold=0.5))
    st.image(overlay, width="stretch", caption=f"Grad-CAM for “{explained}” ({method})")
    if out_of_distribution:
        st.caption(":grey[Out of distribution: this map shows where a model that should not be "
                   "trusted on this scan looked for that class; it is not evidence of it.]")
    st.download_button("Download overlay (PNG)", png_bytes(overlay), key="download_overlay",
                       file_name=f"{file_stem}_gradcam_{explained}.png",
                       mime="image/png", on_click="ignore", icon=":material/download:")
