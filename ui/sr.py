"""Super-resolution page helpers: the settings widgets, the cached comparison and its record."""
from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from core.errors import MedScanError
from core.sr.methods import GAN_PARTNER, METHOD_LABELS, uses_alpha
from ui import upload_results
from ui.engine_and_models import db_write

__all__ = ["METHOD_LABELS", "MODE_HELP", "GAN_NOTE", "SRSettings", "sr_methods_ui",
           "run_comparison", "record_sr_once", "difference_maps", "alpha_curve_ui", "uses_alpha"]

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
    missing = [METHOD_LABELS.get(m, m) for m, v in available.items() if m != "bicubic" and not v]
    default = [m for m in usable if m in ("esrgan", GAN_PARTNER["esrgan"])] or usable[-1:]
    with c3:
        chosen = st.multiselect("Methods (bicubic is always included)",
                                [m for m in usable if m != "bicubic"],
                                default=[m for m in default if m != "bicubic"],
                                format_func=lambda m: METHOD_LABELS.get(m, m), key="sr_methods")
        if missing:
            st.caption(f"No active ×{scale} model for: {', '.join(missing)}.")
    alpha = 1.0
    gans = [m for m in chosen if uses_alpha(m)]
    if gans:
        c_slider, c_curve = st.columns([1, 1], vertical_alignment="center")
        alpha = c_slider.slider(ALPHA_LABEL, 0.0, 1.0, 0.8, 0.1, key="sr_alpha")
        with c_curve:
            alpha_curve_ui(gans, available, alpha)
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
                        f"{', '.join(METHOD_LABELS.get(m, m) for m in settings.methods)}…",
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


def alpha_curve_ui(gans, versions: dict, alpha: float) -> None:
    """The PSNR/SSIM trade-off over α from each chosen GAN model's card
    (``metrics.alpha_curve``), with the slider's α marked; says so when a card has none."""
    from core import registry
    from ui import plots

    curves, missing = {}, []
    for m in gans:
        try:
            card = registry.load_card("sr", versions[m])
        except Exception:  # a broken card: the models list says why; here just no curve
            card = {}
        curve = (card.get("metrics") or {}).get("alpha_curve")
        if curve and curve.get("points"):
            curves[METHOD_LABELS.get(m, m)] = curve
        else:
            missing.append(METHOD_LABELS.get(m, m))
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
