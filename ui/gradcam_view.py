"""The Analyze page's Grad-CAM picture: the scan with the heat map over it, a menu of every
class's map by Grad-CAM and Grad-CAM++, an opacity slider and the box around the hottest region,
and its PNG download.

The menu, the opacity slider and the box switch are part of the plotly figure and run in the
browser: using them reruns nothing and sends nothing (a Streamlit widget costs a rerun of at least
50-70 ms here, whatever it redraws). The figure is cached by what it shows, so a rerun for
another reason resends it as a reference only."""
from __future__ import annotations

import numpy as np
import streamlit as st

from ui.figure_cache import cached_view, digest

__all__ = ["gradcam_view", "gradcam_figure", "choice_label", "BOX_HELP", "DOWNLOAD_OPACITY",
           "METHOD_NAMES"]

BOX_HELP = ("Outline the connected region where the map is at least 50 % of its maximum.")
#: The opacity of the downloaded overlay (the picture's starting opacity).
DOWNLOAD_OPACITY = 0.4
_CAM_BOX = (255, 0, 255)      # Grad-CAM box: magenta, as under "Tumour segmentation"


METHOD_NAMES = {"gradcam": "Grad-CAM", "gradcam++": "Grad-CAM++"}


def choice_label(method: str, cls: str, predicted: str) -> str:
    """The menu entry of one map: "glioma (predicted) · Grad-CAM"."""
    return f"{cls}{' (predicted)' if cls == predicted else ''} · {METHOD_NAMES.get(method, method)}"


def gradcam_figure(display: np.ndarray, maps: dict, *, predicted: str):
    """The plotly picture: scan and the jet heat map of the predicted class by Grad-CAM at
    :data:`DOWNLOAD_OPACITY`; a menu above it shows any other class's map, by Grad-CAM or
    Grad-CAM++, with its own hottest-region box (off until switched on); an opacity slider.
    Every control runs in the browser. ``maps``: ``{(method, class): map in [0, 1]}``."""
    from core.classifier.gradcam import hot_region_bbox
    from ui.plots import overlay_picture

    keys = list(maps)
    choices = []
    for m, c in keys:
        heat = maps[(m, c)]
        choices.append(dict(label=choice_label(m, c, predicted), heat=heat, colour=_CAM_BOX,
                            box=hot_region_bbox(heat, threshold=0.5)))
    first = ("gradcam", predicted)
    return overlay_picture(
        display, heat_choices=choices, chosen=keys.index(first) if first in maps else 0,
        opacity=DOWNLOAD_OPACITY, heat_name="Overlay", choice_box_group="box",
        toggles=[dict(group="box", label="Grad-CAM box", on=False)])


def gradcam_view(display: np.ndarray, maps: dict, *, maps_key: str, predicted: str,
                 out_of_distribution: bool, file_stem: str) -> None:
    """``display``: the windowed scan as shown (uint8); ``maps``: ``{(method, class): map}``
    (:meth:`core.classifier.inference.Classifier.explain_all`); ``predicted``: the predicted
    class, whose Grad-CAM is shown first and downloaded; ``maps_key``: what identifies the
    maps (the scan's key and the model version: hashing eight full-size maps on every rerun
    would cost more than the rerun)."""
    from core.classifier.gradcam import overlay_heatmap
    from ui.images import png_bytes, to_rgb
    from ui.plots import PICTURE_CONFIG

    key = digest(display) + maps_key
    fig = cached_view("gradcam_picture", key, predicted, tuple(sorted(maps)),
                      build=lambda: gradcam_figure(display, maps, predicted=predicted))
    st.plotly_chart(fig, width="stretch", key="cam_picture", config=PICTURE_CONFIG)
    st.caption(f"Grad-CAM of the predicted class, “{predicted}”: where the model found evidence "
               "for it. The menu above the picture shows the map of any class, by Grad-CAM or "
               "Grad-CAM++. Scroll or drag to zoom, double-click to reset. "
               f"Box: {BOX_HELP[:1].lower()}{BOX_HELP[1:]}")
    if out_of_distribution:
        st.caption(":grey[Out of distribution: these maps show where a model that should not be "
                   "trusted on this scan looked for each class; they are not evidence of it.]")
    png = cached_view("gradcam_png", key, predicted, build=lambda: png_bytes(
        overlay_heatmap(to_rgb(display), maps[("gradcam", predicted)], DOWNLOAD_OPACITY)))
    st.download_button("Download overlay PNG", png,
                       help=f"Grad-CAM of the predicted class, “{predicted}”, over the scan at "
                            f"{DOWNLOAD_OPACITY:.0%} opacity",
                       key="download_overlay", file_name=f"{file_stem}_gradcam_{predicted}.png",
                       mime="image/png", on_click="ignore", icon=":material/download:")
