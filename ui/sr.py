"""Super-resolution page helpers: the settings widgets, the cached comparison, its record, and
the views of the result.

Reruns that cost little and send little: every figure is cached by the result's identity
(:func:`sr_token`) and what it shows (:mod:`ui.figure_cache`), images go out at display
resolution (:data:`ui.plots.DISPLAY_PX`; the interactive viewer has full resolution), and the
controls that touch one view (the split's method, the difference map's method, the download
and the rating, the viewer switch) live in ``st.fragment``s: changing them reruns and resends
that view only, not the page."""
from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from core.errors import MedScanError
from core.sr.methods import GAN_PARTNER, METHOD_LABELS, uses_alpha
from ui import figure_cache, plots, upload_results
from ui.engine_and_models import db_write
from ui.images import fit_to, png_bytes
from ui.version_tables import SR_FORMATS

__all__ = ["METHOD_LABELS", "MODE_HELP", "GAN_NOTE", "SRSettings", "sr_methods_ui",
           "run_comparison", "record_sr_once", "difference_maps", "alpha_curve_ui", "uses_alpha",
           "sr_token", "sr_viewer_fragment", "side_by_side_ui", "split_fragment",
           "difference_fragment", "metrics_ui", "download_and_rating_fragment"]
_CHART_CONFIG = {"displaylogo": False, "scrollZoom": True}


def _label(m: str) -> str:
    return METHOD_LABELS.get(m, m)


#: Said next to the difference map whenever a GAN method is shown.
GAN_NOTE = ("GAN output (SRGAN, ESRGAN) can contain plausible structure that is not in the "
            "scan: texture, edges or small details the network drew because they look "
            "realistic. Read the difference map with that in mind, and never read a finding "
            "from a super-resolved image alone; a lower α draws less.")
ALPHA_LABEL = ("GAN interpolation α (0 = its PSNR-trained generator: smoother; 1 = the GAN: "
               "sharper, may invent texture)")
MODE_HELP = {
    "simulate": "Simulate: the scan is shrunk by the scale factor and each method restores it, "
                "so PSNR/SSIM against the original are meaningful.",
    "enhance": "Enhance: the scan itself is enlarged by the scale factor. There is no "
               "higher-resolution reference, so PSNR/SSIM cannot measure quality here.",
}
SCALES = (2, 4)
DEGRADATION_LABELS = {"bicubic": "Bicubic downscaling", "kspace": "MRI k-space truncation"}
DEGRADATION_HELP = ("How the scan is made low-resolution in Simulate mode. Bicubic "
                    "downscaling is what SR papers (and the shipped models' training) use. An "
                    "MRI slice is low-resolution because less of k-space was sampled: k-space "
                    "truncation keeps the central 1/scale of the image's Fourier spectrum; the "
                    "zero-filled (sinc) reconstruction is then the honest baseline.")
SMALLEST_INPUT_PX = 16
#: Enhance mode runs the learned models on the full scan; above this many input pixels (256²)
#: that takes tens of seconds per model on a CPU, so the page asks before starting.
ENHANCE_CONFIRM_PIXELS = 256 * 256


@dataclass(frozen=True)
class SRSettings:
    methods: tuple[str, ...]
    scale: int
    mode: str
    alpha: float
    versions: tuple[tuple[str, str | None], ...]
    degradation: str = "bicubic"


def sr_methods_ui(scan) -> SRSettings:
    from core.sr import available_methods

    c1, c2, c3 = st.columns([1, 1, 2])
    scale = c1.segmented_control("Scale", SCALES, default=4, required=True, key="sr_scale",
                                 format_func=lambda s: f"×{s}")
    mode = c2.segmented_control("Mode", ["simulate", "enhance"], default="simulate",
                                required=True, key="sr_mode", format_func=str.capitalize,
                                help=MODE_HELP["simulate"] + "\n\n" + MODE_HELP["enhance"])
    degradation = "bicubic"
    if mode == "simulate":
        degradation = st.segmented_control(
            "Low-resolution input made by", tuple(DEGRADATION_LABELS), default="bicubic",
            required=True, key="sr_degradation", format_func=DEGRADATION_LABELS.get,
            help=DEGRADATION_HELP)
    available = available_methods(scale)
    usable = [m for m, v in available.items() if m == "bicubic" or v]
    missing = [_label(m) for m, v in available.items() if m != "bicubic" and not v]
    default = [m for m in usable if m in ("esrgan", GAN_PARTNER["esrgan"])] or usable[-1:]
    with c3:
        chosen = st.multiselect("Methods (bicubic is always included)",
                                [m for m in usable if m != "bicubic"],
                                default=[m for m in default if m != "bicubic"],
                                format_func=_label, key="sr_methods")
        if missing:
            st.caption(f"No active ×{scale} model for: {', '.join(missing)}.")
    alpha = 1.0
    gans = [m for m in chosen if uses_alpha(m)]
    if gans:
        cards = _cards(gans, available)
        start, why = _starting_alpha(cards)
        c_slider, c_curve = st.columns([1, 1], vertical_alignment="center")
        # The slider follows the starting α while the user has not moved it (methods added
        # or removed change it); a value the user chose stays.
        last_start = st.session_state.get("_sr_alpha_start")
        if "sr_alpha" not in st.session_state or (
                last_start is not None and last_start != start
                and st.session_state["sr_alpha"] == last_start):
            st.session_state["sr_alpha"] = start
        st.session_state["_sr_alpha_start"] = start
        alpha = c_slider.slider(ALPHA_LABEL, 0.0, 1.0, step=0.1, key="sr_alpha")
        c_slider.caption(f"Starts at α {start:.1f}, {why}.")
        with c_curve:
            alpha_curve_ui(cards, alpha)
    methods = ("bicubic", *(("zero_filled",) if degradation == "kspace" else ()),
               *[m for m in usable if m in chosen])
    versions = tuple((m, available.get(m)) for m in methods)
    return SRSettings(methods=methods, scale=int(scale), mode=mode, alpha=float(alpha),
                      versions=versions, degradation=degradation)


def run_comparison(picked, settings: SRSettings):
    """The cached comparison (None, with a message, when the image cannot be used)."""
    h, w = picked.scan.pixels.shape[:2]
    if settings.mode == "simulate" and min(h, w) // settings.scale < SMALLEST_INPUT_PX:
        st.error(f"The scan ({w}×{h}) is too small to shrink ×{settings.scale} and still "
                 "compare; use Enhance mode or a smaller scale.")
        return None
    learned = [m for m in settings.methods if m != "bicubic"]
    if settings.mode == "enhance" and learned and h * w > ENHANCE_CONFIRM_PIXELS:
        confirmed: set = st.session_state.setdefault("_sr_confirmed", set())
        tag = (picked.key, settings)
        if tag not in confirmed:
            st.warning(f"Enhance ×{settings.scale} makes a {w * settings.scale}×"
                       f"{h * settings.scale} image from this {w}×{h} scan; on a CPU the learned "
                       "models can take a minute or more each.", icon=":material/timer:")
            if not st.button("Run super-resolution", key="sr_confirm", type="primary"):
                return None
            confirmed.add(tag)
    try:
        with st.spinner(f"Super-resolving ×{settings.scale} with "
                        f"{', '.join(_label(m) for m in settings.methods)}…",
                        show_time=True):
            return upload_results.sr_compare(picked.key, settings.scale, settings.mode, settings.methods,
                                     settings.alpha, settings.versions, upload_results.weights_key(),
                                     _pixels=picked.scan.pixels,
                                     degradation=settings.degradation)
    except MedScanError as err:
        st.error(str(err))
        return None


def record_sr_once(user: dict, picked, result, alpha: float) -> None:
    """Store each method's PSNR/SSIM once per browser session."""
    from core.db.scans import record_sr_result

    seen: set = st.session_state.setdefault("_recorded", set())
    # the stored mode says how the LR input was made: "simulate" (bicubic) / "simulate-kspace"
    mode = result.mode + ("-kspace" if (result.degradation or "").startswith("k-space") else "")
    for method, version in result.versions.items():
        tag = f"sr:{picked.key}:{mode}:{result.scale}:{method}:{version}" + (
            f":{alpha}" if uses_alpha(method) else "")
        if tag in seen:
            continue
        seen.add(tag)
        metrics = (result.metrics or {}).get(method, {})
        with db_write(f"The {method} result") as session:  # a failing database: a warning
            record_sr_result(session, scan_sha256=picked.scan.sha256, method=method, scale=result.scale,
                             mode=mode, model_version=version,
                             alpha=alpha if uses_alpha(method) else None,
                             psnr=metrics.get("psnr"), ssim=metrics.get("ssim"),
                             user_id=user["id"])


def difference_maps(result) -> tuple[dict, str]:
    """``|output − original|`` per method in simulate mode; in enhance mode (no ground truth)
    ``|output − bicubic|`` per learned method, which shows what the model added."""
    from core.sr.metrics import diff_map

    if result.diff_maps:
        return result.diff_maps, "the original"
    base = result.outputs.get("bicubic")
    maps = {m: diff_map(base, out) for m, out in result.outputs.items()
            if m != "bicubic" and base is not None}
    return maps, "bicubic"


def _cards(gans, versions: dict) -> dict[str, dict]:
    """Each chosen GAN method's model card ({} when it cannot be read: the models list says
    why)."""
    from core import registry

    cards = {}
    for m in gans:
        try:
            cards[m] = registry.load_card("sr", versions[m])
        except Exception:
            cards[m] = {}
    return cards


def _starting_alpha(cards: dict[str, dict]) -> tuple[float, str]:
    """The slider's starting α: the smallest of the chosen GAN models' own defaults
    (:func:`core.sr.evaluate.default_alpha`), so that each of them starts at or below the α its
    validation curve recommends; and why, per model."""
    from core.sr.evaluate import default_alpha

    chosen = {m: default_alpha(card) for m, card in cards.items()}
    start = min(a for a, _ in chosen.values())
    if len(chosen) == 1:
        (m, (_, reason)), = chosen.items()
        return round(start, 1), f"{_label(m)}'s own: {reason}"
    why = "; ".join(f"{_label(m)} α {a:.1f}, {reason}"
                    for m, (a, reason) in chosen.items())
    return round(start, 1), "the smallest of the chosen models' own (" + why + ")"


def alpha_curve_ui(cards: dict[str, dict], alpha: float) -> None:
    """The PSNR/SSIM trade-off over α from each chosen GAN model's card
    (``metrics.alpha_curve``), with the slider's α marked; says so when a card has none."""
    curves, missing = {}, []
    for m, card in cards.items():
        curve = (card.get("metrics") or {}).get("alpha_curve")
        if curve and curve.get("points"):
            curves[_label(m)] = curve
        else:
            missing.append(_label(m))
    if curves:
        st.plotly_chart(plots.alpha_curve(curves, alpha), key="sr_alpha_curve",
                        config={"displayModeBar": False})
        first = next(iter(curves.values()))
        st.caption(f"Validation means over {first.get('images', '?')} images "
                   f"(LR by {first.get('degradation', 'bicubic downscaling')}); the dotted line "
                   "is bicubic, the red rule the α chosen.")
    if missing:
        st.caption(f"No α curve recorded for {', '.join(missing)} "
                   "(`python -m core evaluate sr --alpha-curve --record`).")


# ---- views of the result ----------------------------------------------------------------------

def sr_token(picked, settings: SRSettings) -> str:
    """The identity of the cached comparison (:func:`ui.upload_results.sr_compare`'s key): the
    first part of every figure key on the page."""
    return figure_cache.token(picked.key, settings, upload_results.weights_key())


@st.fragment
def sr_viewer_fragment(result, scan) -> None:
    """The "Interactive viewer" switch and the viewer: switching it reruns this part only."""
    from ui.viewing import sr_viewer_ui, viewer_toggle_ui

    if viewer_toggle_ui("sr_viewer"):
        sr_viewer_ui(result, scan, METHOD_LABELS)


def side_by_side_ui(result, token: str) -> None:
    """The low-res input (its own pixels, stretched), the original (simulate) and each method,
    on linked axes."""
    def build():
        panels = {f"Low-res input ({result.lr.shape[1]}×{result.lr.shape[0]})": result.lr}
        if result.hr is not None and result.mode == "simulate":
            panels["Original (reference)"] = result.hr
        for m, out in result.outputs.items():
            panels[_label(m)] = out
        return plots.image_panels(panels)

    st.caption("Drag a rectangle on any panel to zoom; all panels follow (double-click resets). "
               "Shown at screen resolution; the interactive viewer has every pixel.")
    st.plotly_chart(figure_cache.cached_view(token, "panels", build=build), key="sr_panels",
                    theme=None, config=_CHART_CONFIG)


@st.fragment
def split_fragment(result, token: str) -> None:
    """The low-res input against one method, split by a slider (client-side)."""
    methods = list(result.outputs)
    c1, _ = st.columns([1, 2])
    right = c1.selectbox("Compare the low-res input with", methods, index=len(methods) - 1,
                         format_func=_label, key="sr_slider_method")

    def build():
        out = result.outputs[right]
        return plots.split_compare(fit_to(result.lr, out.shape[:2]), out,
                                   left_name="low-res input", right_name=_label(right))

    st.plotly_chart(figure_cache.cached_view(token, "split", right, build=build),
                    key="sr_split", theme=None, config=_CHART_CONFIG)


@st.fragment
def difference_fragment(result, token: str) -> None:
    """|method − reference| for one chosen method, with the GAN note when it applies."""
    maps, ref = figure_cache.cached_view(token, "diff-maps", build=lambda: difference_maps(result))
    if not maps:
        st.info("Choose a learned method to see what it changed compared with bicubic.")
        return
    c1, _ = st.columns([1, 2])
    which = c1.selectbox("Difference of", list(maps), format_func=_label, key="sr_diff_method")
    fig = figure_cache.cached_view(
        token, "diff", which,
        build=lambda: plots.difference_map(maps[which], title=f"|{_label(which)} − {ref}|"))
    st.plotly_chart(fig, key="sr_diff", theme=None)
    if any(uses_alpha(m) for m in maps):
        st.warning(GAN_NOTE, icon=":material/visibility:")


def metrics_ui(result, settings: SRSettings, token: str) -> None:
    """The PSNR / SSIM table and dot plot (simulate mode), or why there are none."""
    if result.metrics:
        c_table, c_chart = st.columns([1, 1], vertical_alignment="center")
        c_table.dataframe(
            [{"method": _label(m) + (f" (α {settings.alpha:.2f})" if uses_alpha(m) else ""),
              "PSNR (dB)": round(v["psnr"], 2), "SSIM": round(v["ssim"], 4),
              "model version": result.versions.get(m) or "—"}
             for m, v in result.metrics.items()],
            hide_index=True, key="sr_metrics_table",
            column_config={k: st.column_config.NumberColumn(format=SR_FORMATS[k])
                           for k in ("PSNR (dB)", "SSIM")})
        c_table.caption(f"Against the original scan; {result.scale}-pixel border excluded. "
                        "Higher is better for both.")
        fig = figure_cache.cached_view(
            token, "metrics", build=lambda: plots.metrics_bars(result.metrics, METHOD_LABELS))
        c_chart.plotly_chart(fig, key="sr_metrics_chart", config={"displayModeBar": False})
    if result.metrics_note:
        st.info(result.metrics_note)


@st.fragment
def download_and_rating_fragment(user: dict, picked, result, alpha: float, token: str) -> None:
    """Download one method's output as PNG; rate one method's output (1–5)."""
    from ui.rating import rating_form_ui

    methods = list(result.outputs)
    c1, c2 = st.columns([1, 1])
    with c1:
        dl = st.selectbox("Download", methods, format_func=_label, key="sr_download_method")
        data = figure_cache.cached_view(token, "png", dl,
                                        build=lambda: png_bytes(result.outputs[dl]))
        st.download_button("Download super-resolved image (PNG)", data,
                           file_name=f"{picked.name.rsplit('.', 1)[0]}_{dl}_x{result.scale}.png",
                           mime="image/png", on_click="ignore", key="sr_download",
                           icon=":material/download:")
    with c2:
        rated = st.selectbox("Rate the output of", methods, index=len(methods) - 1,
                             format_func=_label, key="sr_rate_method")
    rating_form_ui(reader_id=user["id"], picked=picked, method=rated,
                   model_version=result.versions.get(rated), key="sr_rating",
                   title="Rate this super-resolved image", scale=result.scale, mode=result.mode,
                   alpha=alpha if uses_alpha(rated) else None, image=result.outputs[rated])
