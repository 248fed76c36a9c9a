"""Super-resolution: bicubic / SRCNN / SRResNet / SRGAN / RRDB / ESRGAN side by side with PSNR
and SSIM."""
from __future__ import annotations

import streamlit as st

from ui import auth, plots
from ui.analysis import record_scan_once
from ui.images import fit_to, png_bytes, to_rgb
from ui.pacs import pacs_source_ui
from ui.rating import rating_form_ui
from ui.scan_ui import scan_or_stop_ui
from ui.sr import (GAN_NOTE, METHOD_LABELS, MODE_HELP, difference_maps, record_sr_once,
                   run_comparison, uses_alpha,
                   sr_methods_ui)
from ui.viewing import sr_viewer_ui, viewer_toggle_ui

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
           "(cached: changing tabs or zooming does not recompute).")
methods = list(result.outputs)
hr_shape = next(iter(result.outputs.values())).shape[:2]
lr_big = fit_to(to_rgb(result.lr), hr_shape)  # nearest-neighbour: the real low-res pixels

if viewer_toggle_ui("sr_viewer"):      # the interactive viewer; the static views follow
    sr_viewer_ui(result, picked.scan, METHOD_LABELS)
tab_side, tab_slider, tab_diff = st.tabs(["Side by side", "Slider comparison",
                                          "Difference map"])
with tab_side:
    panels = {f"Low-res input ({result.lr.shape[1]}×{result.lr.shape[0]})": lr_big}
    if result.hr is not None and result.mode == "simulate":
        panels["Original (reference)"] = to_rgb(result.hr)
    for m in methods:
        panels[METHOD_LABELS.get(m, m)] = to_rgb(result.outputs[m])
    st.caption("Drag a rectangle on any panel to zoom; all panels follow (double-click resets).")
    st.plotly_chart(plots.image_panels(panels), key="sr_panels", theme=None,
                    config={"displaylogo": False, "scrollZoom": True})
with tab_slider:
    c1, _ = st.columns([1, 2])
    right = c1.selectbox("Compare the low-res input with", methods, index=len(methods) - 1,
                         format_func=lambda m: METHOD_LABELS.get(m, m), key="sr_slider_method")
    st.plotly_chart(plots.split_compare(lr_big, to_rgb(result.outputs[right]),
                                        left_name="low-res input",
                                        right_name=METHOD_LABELS.get(right, right)),
                    key="sr_split", theme=None,
                    config={"displaylogo": False, "scrollZoom": True})
with tab_diff:
    maps, ref = difference_maps(result)
    if maps:
        c1, _ = st.columns([1, 2])
        which = c1.selectbox("Difference of", list(maps),
                             format_func=lambda m: METHOD_LABELS.get(m, m), key="sr_diff_method")
        st.plotly_chart(plots.difference_map(maps[which],
                                             title=f"|{METHOD_LABELS.get(which, which)} − {ref}|"),
                        key="sr_diff", theme=None)
        if any(uses_alpha(m) for m in maps):
            st.warning(GAN_NOTE, icon=":material/visibility:")
    else:
        st.info("Choose a learned method to see what it changed compared with bicubic.")
st.subheader("PSNR / SSIM")
if result.metrics:
    c_table, c_chart = st.columns([1, 1], vertical_alignment="center")
    c_table.dataframe(
        [{"method": METHOD_LABELS.get(m, m) + (f" (α {settings.alpha:.2f})" if uses_alpha(m)
                                               else ""),
          "PSNR (dB)": round(v["psnr"], 2), "SSIM": round(v["ssim"], 4),
          "model version": result.versions.get(m) or "—"}
         for m, v in result.metrics.items()],
        hide_index=True, key="sr_metrics_table")
    c_table.caption(f"Against the original scan; {result.scale}-pixel border excluded. "
                    "Higher is better for both.")
    c_chart.plotly_chart(plots.metrics_bars(result.metrics, METHOD_LABELS), key="sr_metrics_chart",
                         config={"displayModeBar": False})
if result.metrics_note:
    st.info(result.metrics_note)


c1, c2 = st.columns([1, 1])
with c1:
    dl = st.selectbox("Download", methods, format_func=lambda m: METHOD_LABELS.get(m, m),
                      key="sr_download_method")
    st.download_button("Download super-resolved image (PNG)", png_bytes(result.outputs[dl]),
                       file_name=f"{picked.name.rsplit('.', 1)[0]}_{dl}_x{result.scale}.png",
                       mime="image/png", on_click="ignore", key="sr_download",
                       icon=":material/download:")
with c2:
    rated = st.selectbox("Rate the output of", methods, index=len(methods) - 1,
                         format_func=lambda m: METHOD_LABELS.get(m, m), key="sr_rate_method")
rating_form_ui(reader_id=user["id"], picked=picked, method=rated,
               model_version=result.versions.get(rated), key="sr_rating",
               title="Rate this super-resolved image", scale=result.scale, mode=result.mode,
               alpha=settings.alpha if uses_alpha(rated) else None, image=result.outputs[rated])
