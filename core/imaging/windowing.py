"""Windowing: presets, the windows a scan offers, parsing of window arguments, rendering.

All windows go through pydicom's own VOI functions (:func:`pydicom.pixels.apply_windowing`,
:func:`pydicom.pixels.apply_voi`) on a tiny synthetic dataset that carries only the
VOI LUT Module: (0028,1050) Window Center, (0028,1051) Window Width, (0028,1056) VOI LUT
Function, and a 16-bit unsigned output range, so the output is divided by 65535 to land in
[0, 1]. The order is the DICOM one: modality LUT / rescale (done by the loader) → VOI LUT or
window → MONOCHROME1 inversion (``1 - x``, after windowing).

Presets are CT windows in Hounsfield units (centre, width): meaningful on CT only. Which
windows make sense depends on the scan, so :func:`window_options` lists them per scan: the
file's own windows (every (0028,1050)/(0028,1051) pair, with its (0028,1055) explanation) or
VOI LUT table, the CT presets on CT only, and min–max and percentile windows computed from the
modality-LUT values (any modality). An explicit window (``apply_window(scan, "brain")``) is
still applied as asked, in the stored units after the modality LUT.
"""
from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from pydicom.dataset import Dataset
from pydicom.pixels import apply_voi, apply_windowing

from core.errors import ScanError

if TYPE_CHECKING:  # pragma: no cover
    from core.imaging.scan import Scan

__all__ = ["WINDOW_PRESETS", "MIN_MAX", "MIN_WIDTH", "PERCENTILE_WINDOWS", "WindowSpec",
           "WindowOption", "parse_window", "apply_window", "window_values", "window_options",
           "min_max_window", "percentile_window", "is_ct"]

MIN_MAX = "min-max"

#: The narrowest window anything here produces (a constant image's min–max window, e.g. a
#: DICOM with (0028,1053) Rescale Slope 0); any width > 0 is accepted as an override.
MIN_WIDTH = 1e-6

#: Percentile windows offered on every greyscale DICOM: (low %, high %) of the modality-LUT
#: values; robust to a few hot or dead pixels where min–max is not.
PERCENTILE_WINDOWS: tuple[tuple[float, float], ...] = ((1.0, 99.0), (0.5, 99.5))

# Percentiles are taken on at most this many values (an even stride through the data), so
# listing the options of a large volume stays fast on every rerun.
_PERCENTILE_SAMPLE = 1 << 20

#: CT presets in HU as (centre, width); ``"min-max"`` maps to ``None`` (computed from the data).
WINDOW_PRESETS: dict[str, tuple[float, float] | None] = {
    "brain": (40.0, 80.0),
    "subdural": (75.0, 215.0),
    "stroke": (40.0, 40.0),
    "bone": (600.0, 2800.0),
    "lung": (-600.0, 1500.0),
    "soft tissue": (50.0, 400.0),
    "mediastinum": (50.0, 350.0),
    "liver": (60.0, 150.0),
    MIN_MAX: None,
}

# pydicom scales window output to the range of (0028,0101) Bits Stored; 16 unsigned bits gives
# the finest quantisation, and we divide by this to get [0, 1].
_OUT_MAX = 65535.0

# Values windowed per step (see window_values).
_CHUNK = 1 << 20


@dataclass(frozen=True)
class WindowSpec:
    """A requested window: ``kind`` is "preset", "manual", "min-max", "file" (the file's VOI
    LUT / first window, or the loader's default), "file window" (one of the file's windows),
    or "percentile". ``name`` labels the source; ``function`` is the (0028,1056) VOI LUT
    Function to use (``None``: the file's, as for presets and manual windows)."""

    kind: str
    center: float | None = None
    width: float | None = None
    name: str | None = None
    function: str | None = None


@dataclass(frozen=True)
class WindowOption:
    """One window a scan offers (see :func:`window_options`).

    ``label`` is unique within the scan and stable across its frames (no numbers that change);
    ``spec`` is what :func:`apply_window` takes; ``center`` / ``width`` are the values it puts
    in force (``None`` for a VOI LUT table, which has none); ``explanation`` says in words where
    it comes from; ``default`` marks the window :func:`~core.imaging.load_scan` applied.
    """

    label: str
    spec: WindowSpec
    center: float | None
    width: float | None
    explanation: str = ""
    default: bool = False


def _norm_name(name: str) -> str:
    return re.sub(r"[\s_\-]+", " ", name.strip().lower())


def parse_window(window: str | tuple[float, float] | WindowSpec | None) -> WindowSpec:
    """Parse ``None`` (file default), a preset name, ``"min-max"``, ``"C,W"`` or ``(C, W)``."""
    if window is None:
        return WindowSpec("file")
    if isinstance(window, WindowSpec):
        return window
    if isinstance(window, str):
        key = _norm_name(window)
        if key in ("min max", "minmax", "auto"):
            return WindowSpec(MIN_MAX, name=MIN_MAX)
        if key in ("file", "default", "dicom"):
            return WindowSpec("file")
        for name, value in WINDOW_PRESETS.items():
            if key == _norm_name(name) and value is not None:
                return WindowSpec("preset", value[0], value[1], name)
        parts = window.split(",")
        if len(parts) == 2:
            try:
                window = (float(parts[0]), float(parts[1]))
            except ValueError:
                pass
        if isinstance(window, str):
            choices = ", ".join(WINDOW_PRESETS)
            raise ScanError(f"Unknown window '{window}': use one of {choices}, or CENTRE,WIDTH "
                            "such as 40,400.", code="bad_window")
    try:
        center, width = (float(v) for v in window)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        raise ScanError(f"A window must be (centre, width), got {window!r}.",
                        code="bad_window") from None
    if not (math.isfinite(center) and math.isfinite(width)) or width <= 0:
        raise ScanError(f"Window width must be a positive number (got centre {center:g}, "
                        f"width {width:g}).", code="bad_window")
    return WindowSpec("manual", center, width)


def _window_ds(center: float, width: float, function: str) -> Dataset:
    ds = Dataset()
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsStored = 16
    ds.PixelRepresentation = 0
    ds.WindowCenter = center
    ds.WindowWidth = width
    ds.VOILUTFunction = function
    return ds


def window_values(values: np.ndarray, center: float, width: float,
                  function: str = "LINEAR") -> np.ndarray:
    """Window modality-LUT ``values`` with pydicom and return float32 in [0, 1].

    ``function`` is the (0028,1056) VOI LUT Function: LINEAR (the DICOM default, needs
    width ≥ 1; narrower windows fall back to LINEAR_EXACT), LINEAR_EXACT or SIGMOID.
    """
    function = function.upper()
    if function == "LINEAR" and width < 1:
        function = "LINEAR_EXACT"
    ds = _window_ds(center, width, function)
    # A chunk at a time: pydicom works in float64 with several full-size temporaries (about
    # 36 bytes per pixel at once); chunks keep one upload's peak memory near 4 bytes per pixel
    # for the float32 result.
    out = np.empty(values.shape, np.float32)
    flat_in, flat_out = np.ascontiguousarray(values).reshape(-1), out.reshape(-1)
    for start in range(0, flat_in.size, _CHUNK):
        stop = start + _CHUNK
        flat_out[start:stop] = apply_windowing(flat_in[start:stop], ds)
    out /= _OUT_MAX
    return np.clip(out, 0.0, 1.0, out=out)


def voi_lut_values(values: np.ndarray, voi: Dataset) -> np.ndarray:
    """Apply the file's (0028,3010) VOI LUT Sequence with pydicom; [0, max LUT entry] → [0, 1]."""
    if values.dtype.kind == "f" and np.array_equal(values, np.rint(values)):
        values = values.astype(np.int64)  # LUT inputs are integers; pydicom warns on floats
    out = apply_voi(values, voi).astype(np.float32)
    item = voi.VOILUTSequence[0]
    n_entries, first_map = item.LUTDescriptor[0] or 65536, item.LUTDescriptor[1]
    lut = apply_voi(np.arange(first_map, first_map + n_entries), voi)
    top = float(lut.max()) or 1.0
    out /= top
    return np.clip(out, 0.0, 1.0, out=out)


def min_max_window(values: np.ndarray) -> tuple[float, float]:
    """The LINEAR_EXACT window (centre, width) mapping min → 0 and max → 1 (width at least
    :data:`MIN_WIDTH`, so a constant image still has a valid window)."""
    lo, hi = float(np.min(values)), float(np.max(values))
    return (lo + hi) / 2.0, max(hi - lo, MIN_WIDTH)


def percentile_window(values: np.ndarray, low: float, high: float) -> tuple[float, float]:
    """The LINEAR_EXACT window (centre, width) mapping the ``low`` and ``high`` percentiles of
    the finite ``values`` to 0 and 1 (width at least :data:`MIN_WIDTH`). Arrays larger than
    2**20 values are sampled with an even stride."""
    flat = np.asarray(values).reshape(-1)
    if flat.size > _PERCENTILE_SAMPLE:
        flat = flat[:: -(-flat.size // _PERCENTILE_SAMPLE)]
    flat = flat[np.isfinite(flat)]
    if flat.size == 0:
        return 0.5, 1.0
    lo, hi = (float(v) for v in np.percentile(flat, [low, high]))
    return (lo + hi) / 2.0, max(hi - lo, MIN_WIDTH)


@dataclass(frozen=True)
class Display:
    """Everything needed to re-render a scan without decoding it again (private to the package).

    ``values`` are float32 modality-LUT values: the chosen frame (H×W[×3]) or, when the volume
    is kept, all frames (N×H×W[×3]). ``file_window`` is the file's (centre, width, function),
    ``file_windows`` every window pair of the file as (centre, width, function, explanation)
    (the explanation already checked for identifiers), ``voi`` a stripped dataset with the
    file's VOI LUT Sequence, ``default`` the window used when the file has none (rasters and
    colour: the bit-depth range), ``invert`` MONOCHROME1.
    """

    values: np.ndarray
    frame_index: int
    has_volume: bool
    invert: bool = False
    voi: Dataset | None = None
    file_window: tuple[float, float, str] | None = None
    default: tuple[float, float, str] | None = None   # (centre, width, label) LINEAR_EXACT
    file_windows: tuple[tuple[float, float, str, str], ...] = ()


def render(display: Display, spec: WindowSpec
           ) -> tuple[np.ndarray, np.ndarray | None, tuple[float, float] | None, str]:
    """Return (pixels, volume or None, (centre, width) or None, window_source)."""
    values = display.values
    window: tuple[float, float] | None
    if spec.center is not None and spec.width is not None:  # preset, manual, file window, ...
        window = (spec.center, spec.width)
        if spec.kind == "preset":
            source = f"preset {spec.name}"
        elif spec.kind == "manual":
            source = "manual"
        else:
            source = spec.name or spec.kind
        func = spec.function or (display.file_window[2] if display.file_window else "LINEAR")
        if spec.function is None and func == "SIGMOID":
            func = "LINEAR"
        out = window_values(values, spec.center, spec.width, func)
    elif spec.kind == "file" and display.voi is not None:
        window, source = None, "file VOI LUT"
        out = voi_lut_values(values, display.voi)
    elif spec.kind == "file" and display.file_window is not None:
        c, w, func = display.file_window
        window, source = (c, w), "file window"
        out = window_values(values, c, w, func)
    elif spec.kind == "file" and display.default is not None:
        c, w, source = display.default
        window = (c, w)
        out = window_values(values, c, w, "LINEAR_EXACT")
    else:  # min-max, or a file without any window
        window = min_max_window(values)
        source = MIN_MAX
        out = window_values(values, window[0], window[1], "LINEAR_EXACT")
    if display.invert:
        out = 1.0 - out
    out = out.astype(np.float32, copy=False)
    out.flags.writeable = False
    if display.has_volume:
        return out[display.frame_index], out, window, source
    return out, None, window, source


def apply_window(scan: Scan, window: str | tuple[float, float] | WindowSpec | None) -> Scan:
    """Return a new :class:`Scan` re-windowed from its stored modality values (no decoding).

    ``window`` is a preset name, ``"min-max"``, ``"C,W"``, ``(C, W)``, a :class:`WindowSpec`
    (e.g. a :class:`WindowOption`'s ``spec``), or ``None`` for the file's own VOI LUT / window
    (or the loader's default).
    """
    from core.imaging.phi import format_window

    spec = parse_window(window)
    pixels, volume, win, source = render(scan._display, spec)
    metadata = dict(scan.metadata)
    metadata["Window"] = format_window(win, source)
    return dataclasses.replace(scan, pixels=pixels, volume=volume, window=win,
                               window_source=source, metadata=metadata)


def is_ct(scan: Scan) -> bool:
    """Whether the CT presets (Hounsfield units) apply: a greyscale DICOM with (0008,0060)
    Modality CT."""
    return (scan.source_format == "dicom" and not scan.is_color
            and str(scan.modality or "").strip().upper() == "CT")


def _fmt(value: float) -> str:
    return f"{value:.6g}"


def window_options(scan: Scan) -> list[WindowOption]:
    """The windows that make sense for ``scan``, the one :func:`~core.imaging.load_scan`
    applied first (``default=True``).

    Greyscale DICOM: the file's VOI LUT table and every (0028,1050)/(0028,1051) window pair
    with its (0028,1055) explanation; the CT presets (:data:`WINDOW_PRESETS`, in HU) only when
    (0008,0060) Modality is CT; min–max and the :data:`PERCENTILE_WINDOWS`, computed from the
    modality-LUT values (all kept frames, so they do not change with the frame). Rasters and
    colour images: only the loader's window (their stored values are the display values).
    """
    display = scan._display
    default_label = "File default"
    if display is None or scan.source_format != "dicom" or scan.is_color:
        c, w = scan.window if scan.window else (None, None)
        return [WindowOption(default_label, WindowSpec("file"), c, w,
                             f"as stored ({scan.window_source})", default=True)]
    options: list[WindowOption] = []
    n_file = len(display.file_windows)
    if display.voi is not None:
        options.append(WindowOption("File VOI LUT", WindowSpec("file"), None, None,
                                    "the lookup table stored in the file (VOI LUT)", default=True))
    for i, (c, w, func, text) in enumerate(display.file_windows):
        label = "File window" + (f" {i + 1} of {n_file}" if n_file > 1 else "")
        label += f": {text}" if text else ""
        source = "file window" + (f" {i + 1}" if n_file > 1 else "") + (
            f" ({text})" if text else "")
        is_default = display.voi is None and i == 0
        spec = WindowSpec("file") if is_default else WindowSpec("file window", c, w, source,
                                                                  func)
        options.append(WindowOption(label, spec, c, w,
                                    "the window stored in the file"
                                    + (f" ({i + 1} of {n_file})" if n_file > 1 else "")
                                    + (f", “{text}”" if text else "")
                                    + (f", {func}" if func != "LINEAR" else ""),
                                    default=is_default))
    if display.voi is None and not display.file_windows and display.file_window is not None:
        c, w, func = display.file_window          # a file window kept by an older loader
        options.append(WindowOption("File window", WindowSpec("file"), c, w,
                                    "the window stored in the file", default=True))
    if not options and display.default is not None:   # the loader's own (a constant image)
        c, w, label = display.default
        options.append(WindowOption(label[:1].upper() + label[1:], WindowSpec("file"), c, w,
                                    f"the loader's window for this file ({label})",
                                    default=True))
    from_file = bool(options)
    if is_ct(scan):
        for name, value in WINDOW_PRESETS.items():
            if value is None:
                continue
            options.append(WindowOption(f"CT {name} (C {_fmt(value[0])} / W {_fmt(value[1])})",
                                        WindowSpec("preset", value[0], value[1], name),
                                        value[0], value[1],
                                        f"standard CT {name} window, in Hounsfield units"))
    c, w = min_max_window(display.values)
    options.append(WindowOption("Min–max", WindowSpec(MIN_MAX, name=MIN_MAX), c, w,
                                "lowest stored value → black, highest → white",
                                default=not from_file))
    for low, high in PERCENTILE_WINDOWS:
        c, w = (float(f"{v:.6g}") for v in percentile_window(display.values, low, high))
        name = f"percentile {low:g}–{high:g} %"
        options.append(WindowOption(f"Percentile {low:g}–{high:g} %",
                                    WindowSpec("percentile", c, w, name, "LINEAR_EXACT"), c, w,
                                    f"the lowest {low:g} % of values → black, the highest "
                                    f"{100 - high:g} % → white (ignores a few extreme pixels)"))
    options.sort(key=lambda o: not o.default)      # stable: the loader's window first
    return options
