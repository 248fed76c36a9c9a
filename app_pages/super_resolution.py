"""Super-resolution: bicubic / SRCNN / SRResNet / SRGAN / RRDB / ESRGAN side by side with PSNR
and SSIM."""
from __future__ import annotations

import streamlit as st

from ui import auth
from ui.analysis import record_scan_once
from ui.pacs import pacs_source_ui
from ui.scan_ui import scan_or_stop_ui
from ui.sr import (MODE_HELP, difference_fragment, download_and_rating_fragment, metrics_ui,
                   record_sr_once, run_comparison, side_by_side_ui, split_fragment,
                   sr_methods_ui, sr_token, sr_viewer_fragment)

user = auth.require_role()
st.title("Super-resolution")

pacs_source_ui("sr")           # "Open from PACS" beside the uploader (when configured)
picked = scan_or_stop_ui("sr_pick", "sr_frame",
                         "Upload a scan (or pick one uploaded on the Analyze page) to compare "
                         "super-resolution methods.")
record_scan_once(user, picked)

settings = sr_methods_ui(picked.scan)
result = run_comparison(picked, settings)
if result is None:
    st.stop()
record_sr_once(user, picked, result, settings.alpha)

st.caption(f"{MODE_HELP[result.mode]}"
           + (f" Low-resolution input made by {result.degradation}." if result.degradation
              else "")
           + f" Computed in {sum(result.seconds.values()):.1f} s "
           "(cached: changing tabs, views or zooming does not recompute).")
token = sr_token(picked, settings)

sr_viewer_fragment(result, picked.scan)   # the interactive viewer; the static views follow
tab_side, tab_slider, tab_diff = st.tabs(["Side by side", "Slider comparison",
                                          "Difference map"])
with tab_side:
    side_by_side_ui(result, token)
with tab_slider:
    split_fragment(result, token)
with tab_diff:
    difference_fragment(result, token)
st.subheader("PSNR / SSIM")
metrics_ui(result, settings, token)
download_and_rating_fragment(user, picked, result, settings.alpha, token)
