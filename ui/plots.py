"""Plotly figures used by the pages. Pure functions: arrays/dicts in, ``go.Figure`` out."""
from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from PIL import Image
from plotly.subplots import make_subplots

from core.classifier.gradcam import jet_colours  # noqa: F401  (re-exported: the overlay layer)
from ui.images import png_bytes, to_rgb, to_uint8

__all__ = ["DISPLAY_PX", "display_image", "percent", "probability_bar", "image_panels", "split_compare", "difference_map", "metrics_bars",
           "loss_curve", "version_metrics", "reliability_diagram", "confusion_heatmap",
           "eval_set_metrics", "score_distribution", "label_counts_bar", "alpha_curve",
           "OPACITY_STEP", "PICTURE_CONFIG", "jet_colours", "outline_xy", "overlay_picture"]

_ACCENT = "#1f6f8b"
_MUTED = "#9fb3c2"
_WARN = "#c0392b"
_IMAGE_CONFIG = {"displaylogo": False, "scrollZoom": True}
# black (no difference) → red → yellow → white (largest), like a "hot" map on a dark screen
_DIFF_SCALE = [[0.0, "#000000"], [0.35, "#7a0c02"], [0.65, "#e8590c"], [0.85, "#ffd43b"],
               [1.0, "#ffffff"]]


#: The longest side, in pixels, an image figure sends (about twice the ~300-560 CSS px it is
#: drawn at, so it stays sharp on a HiDPI screen). Larger outputs are area-averaged down for
#: these static figures; the interactive viewer (``ui.viewer``) carries the full resolution.
DISPLAY_PX = 640


def display_image(image: np.ndarray, max_px: int | None = DISPLAY_PX) -> tuple[np.ndarray, float]:
    """``(pixels, step)``: ``image`` as uint8, greyscale kept 2-D (a third of the PNG of its RGB
    copy), area-averaged so its longest side is at most ``max_px``; ``step`` is how many
    original pixels one shown pixel spans (1.0 when nothing was shrunk)."""
    import cv2

    img = to_uint8(image)
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[..., 0]
    if img.ndim == 3 and (img[..., 0] == img[..., 1]).all() and (img[..., 1] == img[..., 2]).all():
        img = img[..., 0]
    h, w = img.shape[:2]
    if max_px is None or max(h, w) <= max_px:
        return img, 1.0
    step = max(h, w) / max_px
    size = (max(1, round(w / step)), max(1, round(h / step)))
    return cv2.resize(img, size, interpolation=cv2.INTER_AREA), w / size[0]


def _data_uri(image: np.ndarray, *, lossy: bool = False) -> str:
    """A PNG data URI of uint8 pixels as they are (greyscale stays one channel); ``lossy``: a
    WebP at quality :data:`LOSSY_QUALITY` instead, for smooth colour maps drawn over a scan
    (a jet heat map of 512² is about 75 KB as PNG, 7 KB as WebP, the difference invisible at
    any opacity), never for the scan itself."""
    if not lossy:
        return "data:image/png;base64," + base64.b64encode(png_bytes(image)).decode("ascii")
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buf, "WEBP", quality=LOSSY_QUALITY,
                                                      method=4)
    return "data:image/webp;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


#: WebP quality of the heat maps sent to the browser (the downloads stay PNG).
LOSSY_QUALITY = 90


def _image_trace(image: np.ndarray, *, step: float = 1.0, x0: float = 0.0, name: str = "",
                 smooth: bool = False, lossy: bool = False, **kw) -> go.Image:
    """An image trace placed in the original image's pixel coordinates: each shown pixel
    spans ``step`` of them, the left edge at ``x0 - 0.5``; ``smooth`` False draws pixels as
    squares when zoomed (no browser interpolation)."""
    return go.Image(source=_data_uri(image, lossy=lossy), x0=x0 - 0.5 + step / 2,
                    y0=-0.5 + step / 2,
                    dx=step, dy=step, name=name, zsmooth="fast" if smooth else False,
                    hovertemplate="x %{x:.0f}, y %{y:.0f}<extra>" + name + "</extra>", **kw)


#: An image's axes show nothing: no tick marks, labels, grid, zero line or axis line (pixel
#: coordinates are in the hover text).
_BARE_AXIS = dict(showticklabels=False, ticks="", showgrid=False, zeroline=False,
                  showline=False)


def _square_axes(fig: go.Figure, n: int) -> None:
    """Pixels square, y pointing down, bare axes, every panel zooms together."""
    for i in range(1, n + 1):
        suffix = "" if i == 1 else str(i)
        fig.layout[f"yaxis{suffix}"].update(scaleanchor=f"x{suffix}", autorange="reversed",
                                            constrain="domain", constraintoward="top",
                                            **_BARE_AXIS)
        fig.layout[f"xaxis{suffix}"].update(constrain="domain", **_BARE_AXIS)
    fig.update_xaxes(matches="x", **_BARE_AXIS)
    fig.update_yaxes(matches="y", **_BARE_AXIS)
    for key in list(fig.layout):            # empty cells of the last row: no axes at all
        if key.startswith(("xaxis", "yaxis")) and int(key[5:] or 1) > n:
            fig.layout[key].visible = False


def percent(p: float) -> str:
    """A probability as a percentage that never claims certainty: 0.9996 -> '>99.9%'."""
    if p >= 0.9995:
        return ">99.9%"
    if 0 < p < 0.0005:
        return "<0.1%"
    return f"{p:.1%}"


def probability_bar(probabilities: Mapping[str, float], predicted: str,
                    low_confidence: float) -> go.Figure:
    """Horizontal bars, one per class (every class, highest first); the predicted class in colour,
    a dashed line at the low-confidence threshold."""
    items = sorted(probabilities.items(), key=lambda kv: kv[1])
    names = [k for k, _ in items]
    values = [float(v) for _, v in items]
    colours = [_ACCENT if k == predicted else _MUTED for k in names]
    fig = go.Figure(go.Bar(x=values, y=names, orientation="h", marker_color=colours,
                           text=[percent(v) for v in values], textposition="outside",
                           cliponaxis=False, hovertemplate="%{y}: %{x:.1%}<extra></extra>"))
    fig.add_vline(x=low_confidence, line_dash="dash", line_color=_WARN,
                  annotation_text="low-confidence threshold", annotation_position="top")
    fig.update_layout(xaxis=dict(range=[0, 1.32], tickformat=".0%", tickvals=[0, 0.5, 1],
                                 title="calibrated probability"),
                      height=70 + 42 * len(names), margin=dict(l=10, r=10, t=30, b=40),
                      showlegend=False)
    return fig


def image_panels(images: Mapping[str, np.ndarray], *, cols: int = 3,
                 panel_px: int = 300, max_px: int | None = DISPLAY_PX) -> go.Figure:
    """Images in a grid (``cols`` per row) on linked axes: zoom or pan one panel and the others
    follow, so the same region is compared. Images may differ in size (a low-resolution input
    beside its ×4 outputs): each is stretched over the largest one's field of view, its pixels
    drawn as squares, and the hover shows the largest image's pixel coordinates. Each is sent
    at display resolution (:func:`display_image`)."""
    names = list(images)
    cols = min(cols, len(names))
    rows = -(-len(names) // cols)
    width = max(np.shape(images[n])[1] for n in names)
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=names, horizontal_spacing=0.01,
                        vertical_spacing=0.06)
    for i, name in enumerate(names):
        shown, step = display_image(images[name], max_px)
        step *= width / np.shape(images[name])[1]
        fig.add_trace(_image_trace(shown, step=step, name=name),
                      row=i // cols + 1, col=i % cols + 1)
    _square_axes(fig, len(names))
    fig.update_layout(height=rows * (panel_px + 30), margin=dict(l=0, r=0, t=30, b=0),
                      dragmode="zoom")
    return fig


def split_compare(left: np.ndarray, right: np.ndarray, *, left_name: str, right_name: str,
                  steps: int = 41, height: int = 560, max_px: int | None = DISPLAY_PX
                  ) -> go.Figure:
    """Two images of one region on the same view, split by a vertical line that a slider moves.

    The right image is one trace; the left one is cut into vertical strips, one trace each,
    laid over it, and slider step *k* shows the first *k* strips. So the figure carries each
    image once (at display resolution), whatever the number of steps, instead of one
    composite per step; the slider runs client-side (no rerun), and zoom and pan still work.

    Why plotly and not ``streamlit-image-comparison``: that package (0.0.4) loads juxtapose.js
    from cdn.knightlab.com, which an offline hospital network cannot reach. The interactive
    viewer (``ui.viewer``) has the continuous split at full resolution.
    """
    left, right = to_uint8(left), to_uint8(right)
    if left.shape[:2] != right.shape[:2]:
        raise ValueError(f"split_compare needs equal shapes, got {left.shape} and {right.shape}")
    h = left.shape[0]
    right_shown, step = display_image(right, max_px)
    left_shown, _ = display_image(left, max_px)
    if left_shown.ndim != right_shown.ndim:                 # one colour, one grey: both RGB
        left_shown, right_shown = to_rgb(left_shown), to_rgb(right_shown)
    dw = right_shown.shape[1]
    cuts = np.unique(np.linspace(0, dw, steps).round().astype(int))    # in shown pixels
    start = len(cuts) // 2
    fig = go.Figure(_image_trace(right_shown, step=step, name=right_name))
    for a, b in zip(cuts[:-1], cuts[1:]):
        a0 = max(a - 1, 0)     # one column under the previous strip: no hairline at the seam
        fig.add_trace(_image_trace(left_shown[:, a0:b], step=step, x0=a0 * step, name=left_name,
                                   visible=bool(b <= cuts[start])))

    def divider(cut: int) -> list[dict]:
        x = cut * step - 0.5
        return [dict(type="line", x0=x, x1=x, y0=-0.5, y1=h - 0.5,
                     line=dict(color="#ffd400", width=2))]

    n_strips = len(cuts) - 1
    steps_spec = [dict(method="update", label=f"{round(100 * c / dw)}%",
                       args=[{"visible": [True] + [j < k for j in range(n_strips)]},
                             {"shapes": divider(c)}])
                  for k, c in enumerate(cuts)]
    fig.update_layout(
        shapes=divider(cuts[start]), height=height, margin=dict(l=0, r=0, t=30, b=10),
        showlegend=False,
        sliders=[dict(active=start, steps=steps_spec, pad=dict(t=30),
                      currentvalue=dict(prefix=f"◀ {left_name} | {right_name} ▶   split at "))],
        yaxis=dict(scaleanchor="x", autorange="reversed", constrain="domain",
                   constraintoward="top", **_BARE_AXIS),
        xaxis=dict(constrain="domain", **_BARE_AXIS),
        annotations=[dict(x=0, y=1.0, xref="paper", yref="paper", text=left_name, showarrow=False,
                          xanchor="left", yanchor="bottom"),
                     dict(x=1, y=1.0, xref="paper", yref="paper", text=right_name,
                          showarrow=False, xanchor="right", yanchor="bottom")])
    return fig


#: ``st.plotly_chart`` config of an :func:`overlay_picture`: no mode bar (it would cover the
#: switches above the picture); scroll and drag zoom, a double click resets.
PICTURE_CONFIG = {"displaylogo": False, "scrollZoom": True, "displayModeBar": False}

#: The overlay opacity slider's step (client-side; 0 to 1).
OPACITY_STEP = 0.05


def outline_xy(mask: np.ndarray) -> tuple[list, list]:
    """The outer contours of a binary mask as one line trace's ``(x, y)`` in pixel coordinates
    (pixel centres; contours separated by None): drawn as vectors, crisp at any zoom."""
    import cv2

    contours, _ = cv2.findContours(np.asarray(mask, np.uint8), cv2.RETR_EXTERNAL,
                                   cv2.CHAIN_APPROX_SIMPLE)
    xs: list = []
    ys: list = []
    for c in contours:
        pts = c[:, 0, :]
        xs += [*pts[:, 0].tolist(), int(pts[0, 0]), None]
        ys += [*pts[:, 1].tolist(), int(pts[0, 1]), None]
    return xs, ys


def _css(colour) -> str:
    return colour if isinstance(colour, str) else "rgb({},{},{})".format(*colour)


def overlay_picture(base: np.ndarray, *, heat: np.ndarray | None = None, opacity: float = 0.4,
                    heat_name: str = "Grad-CAM", boxes: Sequence[Mapping] = (),
                    outlines: Sequence[Mapping] = (), toggles: Sequence[Mapping] = (),
                    heat_choices: Sequence[Mapping] = (), chosen: int = 0,
                    choice_box_group: str | None = None,
                    height: int = 300, max_px: int | None = DISPLAY_PX) -> go.Figure:
    """A scan with overlays whose controls run in the browser: moving the opacity slider or
    switching a layer on or off costs no rerun and sends nothing.

    ``heat``: a [0, 1] map (any size; resized to the scan) drawn in jet colours over the scan
    at ``opacity``, with a slider (steps of :data:`OPACITY_STEP`) under the picture.
    ``boxes``: ``{"name", "box": (x0, y0, x1, y1) half-open in scan pixels or None, "colour",
    "group"}``; ``outlines``: ``{"name", "mask": H×W bool, "colour", "group"}``.
    ``toggles``: ``{"group", "label", "on"}``: one button per group above the picture, each
    click switching its boxes and outlines on or off together; ``on`` is the starting state.
    ``heat_choices`` (instead of ``heat``): ``{"label", "heat", "box"}`` maps of which one is
    shown at a time (``chosen`` first), picked from a menu above the picture in the browser;
    each may bring its own ``box`` (half-open, or None), shown with its map and switched on or
    off together by the toggle of ``choice_box_group`` (a group of its own).
    Everything is placed in the scan's pixel coordinates (the scan is sent at display
    resolution, :func:`display_image`), so the overlays stay on their pixels when zoomed.
    ``height``: of the picture's area in CSS px (the controls come on top of it)."""
    if heat is not None and heat_choices:
        raise ValueError("overlay_picture takes heat or heat_choices, not both")
    choices = list(heat_choices) or ([dict(label=heat_name, heat=heat)] if heat is not None
                                     else [])
    if choices and not 0 <= chosen < len(choices):
        raise ValueError(f"chosen {chosen} is not one of the {len(choices)} heat maps")
    shown, step = display_image(base, max_px)
    fig = go.Figure(_image_trace(shown, step=step, name="scan"))
    heat_idx: list[int] = []
    for i, c in enumerate(choices):
        heat_idx.append(len(fig.data))
        colours = jet_colours(c["heat"], shown.shape[:2])
        name = heat_name if not heat_choices else f"{heat_name}: {c['label']}"
        fig.add_trace(_image_trace(colours, step=step, name=name, opacity=float(opacity),
                                   visible=i == chosen, lossy=True))
    state = {t["group"]: bool(t.get("on", False)) for t in toggles}
    traces: dict[str, list[int]] = {g: [] for g in state}
    shapes: dict[str, list[int]] = {g: [] for g in state}
    # Each choice's own box: a line trace shown with its map (the menu sets "visible"), and
    # switched by its group's toggle through its opacity, so the two controls never clash.
    box_idx: list[int] = []
    has_box = [bool(heat_choices) and c.get("box") is not None for c in choices]
    for i, c in enumerate(choices):
        if not has_box[i]:
            continue
        x0, y0, x1, y1 = (float(v) - 0.5 for v in c["box"])
        box_idx.append(len(fig.data))
        fig.add_trace(go.Scatter(x=[x0, x1, x1, x0, x0], y=[y0, y0, y1, y1, y0], mode="lines",
                                 name=f"{c['label']} box", hoverinfo="skip", showlegend=False,
                                 line=dict(color=_css(c.get("colour", (255, 0, 255))), width=2),
                                 visible=i == chosen,
                                 opacity=1.0 if state.get(choice_box_group, True) else 0.0))
    for o in outlines:
        xs, ys = outline_xy(o["mask"])
        if not xs:
            continue
        g = o.get("group")
        traces.setdefault(g, []).append(len(fig.data))
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", name=o["name"], hoverinfo="skip",
                                 line=dict(color=_css(o["colour"]), width=2),
                                 visible=state.get(g, True), showlegend=False))
    layout_shapes = []
    for b in boxes:
        if b.get("box") is None:
            continue
        x0, y0, x1, y1 = (float(v) for v in b["box"])
        g = b.get("group")
        shapes.setdefault(g, []).append(len(layout_shapes))
        layout_shapes.append(dict(type="rect", x0=x0 - 0.5, y0=y0 - 0.5, x1=x1 - 0.5,
                                  y1=y1 - 0.5, line=dict(color=_css(b["colour"]), width=2),
                                  name=b["name"], visible=state.get(g, True)))
    buttons = []
    for t in toggles:
        g = t["group"]

        def turn(on: bool, g=g) -> tuple[str, list]:
            if g == choice_box_group and box_idx:
                return "restyle", [{"opacity": 1.0 if on else 0.0}, box_idx]
            relayout = {f"shapes[{k}].visible": on for k in shapes[g]}
            if traces[g] and relayout:
                return "update", [{"visible": on}, relayout, traces[g]]
            if traces[g]:
                return "restyle", [{"visible": on}, traces[g]]
            return "relayout", [relayout]

        if g == choice_box_group and box_idx and (traces[g] or shapes[g]):
            raise ValueError("the choices' box group holds the choices' boxes only")
        if not traces[g] and not shapes[g] and not (g == choice_box_group and box_idx):
            continue                     # nothing to switch (e.g. an empty mask)
        method, flip = turn(not state[g])
        _, back = turn(state[g])
        # one button per group; each click flips it (plotly's args / args2)
        buttons.append(dict(label=f"{t['label']} on/off", method=method, args=flip,
                            args2=back))
    picker = len(choices) > 1
    if len(buttons) + picker > 2:
        raise ValueError("overlay_picture has room for two switches (left and right), or one "
                         "switch and the heat-map menu")
    # Controls above the picture (the picture keeps to the top of its area, so a narrow
    # column leaves room below it, not between the picture and its controls): the opacity
    # slider right above it, the switches above that.
    slider_px = 58 if choices else 0
    row_px = 36
    top = 8 + slider_px + row_px * (bool(buttons) + picker)
    # One menu per switch: plotly keeps one "active" button per menu and runs args2 when the
    # active one is clicked, so each switch needs its own menu starting inactive (-1). The
    # first sits at the left edge, the second at the right.
    menus = [dict(type="buttons", direction="right", showactive=False, active=-1,
                  x=float(i), xanchor=("left", "right")[i], y=1.0 + (slider_px + 2) / height,
                  yanchor="bottom", pad=dict(t=0, b=0, l=0, r=0), font=dict(size=12),
                  buttons=[b])
             for i, b in enumerate(buttons)]
    if picker:
        # The heat-map menu on its own row above the switches, at the left (in a narrow
        # column it would cover a switch on a shared row): choosing one shows its map and its
        # box (their "visible"); the box switch keeps to their opacity.
        idx = heat_idx + box_idx
        menus.append(dict(
            type="dropdown", direction="down", showactive=True, active=chosen, x=0.0,
            xanchor="left", y=1.0 + (slider_px + 2 + row_px * bool(buttons)) / height,
            yanchor="bottom",
            pad=dict(t=0, b=0, l=0, r=0), font=dict(size=12),
            buttons=[dict(label=c["label"], method="restyle",
                          args=[{"visible": [j == i for j in range(len(choices))]
                                 + [j == i for j in range(len(choices)) if has_box[j]]},
                                idx])
                     for i, c in enumerate(choices)]))
    sliders = []
    if choices:
        n = round(1 / OPACITY_STEP)
        values = [round(k * OPACITY_STEP, 2) for k in range(n + 1)]
        sliders.append(dict(
            active=int(np.argmin([abs(v - opacity) for v in values])), len=1.0, x=0,
            y=1.0, yanchor="bottom", pad=dict(t=0, b=6, l=4, r=4), ticklen=0, minorticklen=0,
            font=dict(size=1, color="rgba(0,0,0,0)"),
            currentvalue=dict(prefix=f"{heat_name} opacity: ", offset=4,
                              font=dict(size=13, color="#31333f")),
            steps=[dict(method="restyle", label=f"{v:.2f}", args=[{"opacity": v}, heat_idx])
                   for v in values]))
    fig.update_layout(
        shapes=layout_shapes, updatemenus=menus, sliders=sliders, showlegend=False,
        height=height + top, margin=dict(l=0, r=2, t=top, b=0), dragmode="zoom",
        yaxis=dict(scaleanchor="x", autorange="reversed", constrain="domain",
                   constraintoward="top", **_BARE_AXIS),
        xaxis=dict(constrain="domain", **_BARE_AXIS))
    return fig


def difference_map(diff: np.ndarray, *, title: str, height: int = 460,
                   max_px: int | None = 384) -> go.Figure:
    """|SR - reference| as a heatmap (brighter = larger difference), square pixels. Maps larger
    than ``max_px`` are shown block-wise: each shown cell is the largest difference of the
    pixels it covers (a single-pixel artefact still shows), sent as float32 (plotly's binary
    array encoding) and placed in the original pixel coordinates."""
    d = np.asarray(diff, dtype=np.float32)
    if d.ndim == 3:
        d = d.mean(axis=2)
    h, w = d.shape
    zmax = float(max(np.percentile(d, 99.5), 1e-6))
    k = 1 if max_px is None else max(1, -(-max(h, w) // max_px))
    if k > 1:                                  # max-pool k×k blocks (edge blocks padded)
        ph, pw = -(-h // k) * k, -(-w // k) * k
        padded = np.zeros((ph, pw), np.float32)
        padded[:h, :w] = d
        d = padded.reshape(ph // k, k, pw // k, k).max(axis=(1, 3))
    what = "x %{x:.0f}, y %{y:.0f}: %{z:.3f}" if k == 1 else \
        f"x %{{x:.0f}}, y %{{y:.0f}} ({k}×{k} block): max %{{z:.3f}}"
    fig = go.Figure(go.Heatmap(z=d, x0=(k - 1) / 2, dx=k, y0=(k - 1) / 2, dy=k,
                               colorscale=_DIFF_SCALE, zmin=0, zmax=zmax,
                               colorbar=dict(title="|diff|"),
                               hovertemplate=what + "<extra></extra>"))
    fig.update_layout(title=title, height=height, margin=dict(l=0, r=0, t=40, b=0),
                      yaxis=dict(scaleanchor="x", autorange="reversed", constrain="domain",
                                 constraintoward="top", **_BARE_AXIS),
                      xaxis=dict(constrain="domain", **_BARE_AXIS))
    return fig


def _padded_range(values: Sequence[float], pad: float = 0.25, min_span: float = 0.0
                  ) -> list[float] | None:
    """An axis range around ``values`` (finite ones) with ``pad`` × their span (at least
    ``min_span``) on each side, or None when there is nothing finite to show."""
    vals = [v for v in values if np.isfinite(v)]
    if not vals:
        return None
    lo, hi = min(vals), max(vals)
    span = max(hi - lo, min_span)
    return [lo - pad * span, hi + pad * span]


def metrics_bars(metrics: Mapping[str, Mapping[str, float]],
                 labels: Mapping[str, str] | None = None) -> go.Figure:
    """PSNR (dB) and SSIM per method, two panels of dots (not bars: a bar from 0 dB makes 29 and
    32 dB look alike). Each axis spans the values shown plus a margin; the numbers are printed
    with the decimals of the table beside it (PSNR 2, SSIM 4). An infinite PSNR (identical images) is written "∞" at
    the top of the panel."""
    methods = list(metrics)
    names = [(labels or {}).get(m, m) for m in methods]
    fig = make_subplots(rows=1, cols=2, subplot_titles=("PSNR (dB, higher is better)",
                                                        "SSIM (higher is better)"))
    for col, key, fmt, min_span in ((1, "psnr", "{:.2f}", 1.0), (2, "ssim", "{:.4f}", 0.02)):
        vals = [float(metrics[m][key]) for m in methods]
        rng = _padded_range(vals, min_span=min_span)
        top = rng[1] if rng else 1.0
        shown = [v if np.isfinite(v) else top for v in vals]
        fig.add_trace(go.Scatter(x=names, y=shown, mode="markers+text", showlegend=False,
                                 marker=dict(color=_ACCENT, size=13),
                                 text=[fmt.format(v) if np.isfinite(v) else "∞" for v in vals],
                                 textposition="top center", cliponaxis=False), row=1, col=col)
        if rng:
            fig.update_yaxes(range=rng, row=1, col=col)
    fig.update_yaxes(showgrid=True, gridcolor="#e5e7eb")
    fig.update_layout(height=320, margin=dict(l=10, r=10, t=40, b=10))
    return fig


def alpha_curve(curves: Mapping[str, Mapping], alpha: float | None = None, *,
                height: int = 230) -> go.Figure:
    """The GAN methods' trade-off over network interpolation α (``metrics.alpha_curve`` of their
    cards, :func:`core.sr.evaluate.alpha_curve`): PSNR and SSIM against α, one line per method
    (keyed by its label), bicubic on the same images as a dotted line, the current ``alpha`` as
    a vertical rule."""
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.16,
                        subplot_titles=("PSNR (dB)", "SSIM"))
    colours = [_ACCENT, "#e8590c", "#2f9e44", "#862e9c"]
    for i, (name, curve) in enumerate(curves.items()):
        xs = [p["alpha"] for p in curve["points"]]
        for col, key in ((1, "psnr"), (2, "ssim")):
            fig.add_trace(go.Scatter(
                x=xs, y=[p[key] for p in curve["points"]], mode="lines+markers", name=name,
                legendgroup=name, showlegend=col == 1,
                line=dict(color=colours[i % len(colours)]),
                hovertemplate=f"{name}<br>α %{{x:.1f}}: %{{y:.{2 if key == 'psnr' else 4}f}}"
                              "<extra></extra>"), row=1, col=col)
            ref = (curve.get("bicubic") or {}).get(key)
            if ref is not None:
                fig.add_hline(y=ref, line=dict(color=_MUTED, dash="dot", width=1), row=1, col=col,
                              annotation_text="bicubic" if i == 0 else None,
                              annotation_font_size=10, annotation_position="bottom left")
    if alpha is not None:
        fig.add_vline(x=float(alpha), line=dict(color=_WARN, width=1))
    fig.update_xaxes(title_text="α", range=[-0.05, 1.05], dtick=0.2, title_standoff=8)
    fig.update_yaxes(showgrid=True, gridcolor="#e5e7eb")
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=28, b=10),
                      legend=dict(orientation="h", yanchor="bottom", y=-0.55, font_size=11))
    fig.update_annotations(font_size=12)
    return fig


def _series_name(key: str) -> str:
    base = key.removeprefix("val_")
    return ("validation" if key.startswith("val_") else "training") if base in (
        "loss", "accuracy") else key.replace("_", " ")


def loss_curve(points: Sequence[Mapping[str, float]], *, x: str = "epoch") -> go.Figure:
    """Two small charts against ``x``, each with its own labelled y-axis: loss (``loss``,
    ``val_loss``) on the left, accuracy and the other numeric series on the right. Training
    lines solid, validation lines dashed, one legend for both charts."""
    keys = [k for k in (points[-1] if points else {}) if k != x]
    losses = [k for k in keys if "loss" in k]
    others = [k for k in keys if "loss" not in k]
    right = ("accuracy" if others and all("acc" in k or "f1" in k for k in others)
             else "other metrics")
    fig = make_subplots(rows=1, cols=2 if others else 1, horizontal_spacing=0.14,
                        subplot_titles=("Loss", right.capitalize()) if others else ("Loss",))
    colors = {"training": _ACCENT, "validation": "#e8590c"}
    shown: set[str] = set()
    xs = [p.get(x) for p in points]
    for col, group in ((1, losses), (2, others)):
        for k in group:
            name = _series_name(k)
            fig.add_trace(go.Scatter(
                x=xs, y=[p.get(k) for p in points], mode="lines+markers", name=name,
                legendgroup=name, showlegend=name not in shown,
                line=dict(color=colors.get(name), dash="dash" if k.startswith("val_") else None)),
                row=1, col=col)
            shown.add(name)
    fig.update_xaxes(title_text=x)
    fig.update_yaxes(title_text="loss", rangemode="tozero", row=1, col=1)
    if others:
        fig.update_yaxes(title_text=right, rangemode="tozero", row=1, col=2,
                         range=[0, 1.05] if right == "accuracy" else None)
    fig.update_layout(height=300, margin=dict(l=10, r=10, t=30, b=10),
                      legend=dict(orientation="h", yanchor="top", y=-0.25))
    fig.update_annotations(font_size=13)
    return fig


def version_metrics(rows: Sequence[Mapping[str, object]], metric_names: Sequence[str]) -> go.Figure:
    """Grouped bars: one group per metric, one bar per model version."""
    fig = go.Figure()
    for row in rows:
        fig.add_trace(go.Bar(name=str(row["version"]), x=list(metric_names),
                             y=[row.get(m) for m in metric_names]))
    fig.update_layout(barmode="group", height=340, margin=dict(l=10, r=10, t=30, b=10),
                      legend=dict(orientation="h", y=1.15))
    return fig


def eval_set_metrics(reports: Mapping[str, Mapping[str, object]], metric_names: Sequence[str],
                     *, title: str, status: Mapping[str, str] | None = None,
                     labels: Mapping[str, str] | None = None) -> go.Figure:
    """Grouped bars of versions evaluated on ONE evaluation set (``reports``: version → report
    on that set): one group per metric, one bar per version, the set named in the title. Never
    mix figures of different sets (validation vs test) on these bars."""
    fig = go.Figure()
    for version, report in reports.items():
        tag = (status or {}).get(version)
        fig.add_trace(go.Bar(name=f"{version} ({tag})" if tag else str(version),
                             x=[(labels or {}).get(m, m) for m in metric_names],
                             y=[report.get(m) for m in metric_names],
                             text=[f"{report[m]:.3f}" if isinstance(report.get(m), (int, float))
                                   else "" for m in metric_names], textposition="outside"))
    fig.update_layout(barmode="group", height=360, title=dict(text=title, x=0, font_size=14),
                      margin=dict(l=10, r=10, t=50, b=10), yaxis=dict(range=[0, 1.1]),
                      legend=dict(orientation="h", yanchor="top", y=-0.12))
    return fig


def reliability_diagram(bins: Sequence[Mapping[str, float]], *, title: str = "",
                        height: int = 340) -> go.Figure:
    """Accuracy against mean confidence per confidence bin (bar width = the bin, hover gives the
    image count), with the diagonal a perfectly calibrated model would follow and the gap shaded:
    bars below the diagonal mean over-confidence."""
    bins = [b for b in bins if b.get("count")]
    mids = [(b["lo"] + b["hi"]) / 2 for b in bins]
    widths = [(b["hi"] - b["lo"]) * 0.92 for b in bins]
    fig = go.Figure()
    fig.add_trace(go.Bar(x=mids, y=[b["accuracy"] for b in bins], width=widths,
                         marker_color=_ACCENT, name="accuracy",
                         customdata=[[b["count"], b["confidence"]] for b in bins],
                         hovertemplate=("confidence %{customdata[1]:.1%}: right in %{y:.1%} "
                                        "of %{customdata[0]} images<extra></extra>")))
    fig.add_trace(go.Scatter(x=[b["confidence"] for b in bins], y=[b["confidence"] for b in bins],
                             mode="markers", marker=dict(color=_WARN, symbol="line-ew-open",
                                                         size=14, line_width=2),
                             name="mean confidence", hoverinfo="skip"))
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="perfect calibration",
                             line=dict(color="#666", dash="dash"), hoverinfo="skip"))
    for mid, b in zip(mids, bins):
        fig.add_annotation(x=mid, y=b["accuracy"], text=str(b["count"]), showarrow=False,
                           yshift=9, font=dict(size=10, color="#555"))
    fig.update_layout(title=dict(text=title, x=0, font_size=14) if title else None,
                      height=height, margin=dict(l=10, r=10, t=40 if title else 10, b=10),
                      xaxis=dict(range=[0, 1.02], tickformat=".0%", title="model confidence"),
                      yaxis=dict(range=[0, 1.08], tickformat=".0%", title="share correct"),
                      bargap=0, legend=dict(orientation="h", yanchor="top", y=-0.22))
    return fig


def confusion_heatmap(matrix: Sequence[Sequence[int]], classes: Sequence[str], *,
                      title: str = "", height: int = 340) -> go.Figure:
    """Counts with rows = true class and columns = predicted class; colour by the share of the
    true class's images so that each row reads as recall."""
    cm = np.asarray(matrix, dtype=float)
    share = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    fig = go.Figure(go.Heatmap(z=share, x=list(classes), y=list(classes), zmin=0, zmax=1,
                               colorscale="Blues", showscale=False,
                               text=cm.astype(int), texttemplate="%{text}",
                               customdata=share,
                               hovertemplate=("true %{y}, predicted %{x}: %{text} images "
                                              "(%{customdata:.0%} of %{y})<extra></extra>")))
    fig.update_layout(title=dict(text=title, x=0, font_size=14) if title else None,
                      height=height, margin=dict(l=10, r=10, t=40 if title else 10, b=10),
                      xaxis=dict(title="predicted", side="bottom"),
                      yaxis=dict(title="true", autorange="reversed"))
    return fig


def score_distribution(scores: Mapping[str, Mapping[str, Sequence[float]]], *,
                       labels: Mapping[str, str] | None = None, height: int = 360) -> go.Figure:
    """Reader-study scores by condition: ``scores[question][condition]`` → every rating. One box
    per condition and question (a colour per question) with every score drawn as a jittered
    point, on the 1–5 scale."""
    fig = go.Figure()
    colors = [_ACCENT, "#e8590c", _MUTED]
    for i, (question, by_condition) in enumerate(scores.items()):
        xs, ys = [], []
        for condition, values in by_condition.items():
            xs += [condition] * len(values)
            ys += [float(v) for v in values]
        fig.add_trace(go.Box(x=xs, y=ys, name=(labels or {}).get(question, question),
                             boxpoints="all", jitter=0.4, pointpos=0,
                             marker=dict(color=colors[i % len(colors)], size=5, opacity=0.6)))
    fig.update_layout(boxmode="group", height=height, margin=dict(l=10, r=10, t=30, b=10),
                      yaxis=dict(title_text="score", range=[0.5, 5.5], dtick=1),
                      legend=dict(orientation="h", yanchor="top", y=-0.12))
    return fig


def label_counts_bar(counts: Mapping[str | None, int], *, height: int = 220) -> go.Figure:
    """Horizontal bars of cases per confirmed label (``None`` shown as "no label")."""
    names = [k if k is not None else "no label" for k in counts]
    values = list(counts.values())
    fig = go.Figure(go.Bar(x=values, y=names, orientation="h", text=values,
                           textposition="auto", marker_color=_ACCENT))
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=10, b=30),
                      xaxis_title="cases", yaxis=dict(autorange="reversed"))
    return fig
