"""Windowing: presets, parsing of window arguments, and rendering stored values to [0, 1].

All windows go through pydicom's own VOI functions (:func:`pydicom.pixels.apply_windowing`,
:func:`pydicom.pixels.apply_voi`) on a tiny synthetic dataset that carries only the
VOI LUT Module: (0028,1050) Window Center, (0028,1051) Window Width, (0028,1056) VOI LUT
Function, and a 16-bit unsigned output range, so the output is divided by 65535 to land in
[0, 1]. The order is the DICOM one: modality LUT / rescale (done by the loader) → VOI LUT or
window → MONOCHROME1 inversion (``1 - x``, after windowing).

Presets are CT windows in Hounsfield units (centre, width). On other modalities a window
override still works, in the stored units after the modality LUT (e.g. MR signal), but the
named presets are meaningless there.
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

__all__ = ["WINDOW_PRESETS", "MIN_MAX", "WindowSpec", "parse_window", "apply_window",
           "window_values"]

MIN_MAX = "min-max"

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


@dataclass(frozen=True)
class WindowSpec:
    """A requested window: ``kind`` is "preset", "manual", "min-max" or "file" (use the file's)."""

    kind: str
    center: float | None = None
    width: float | None = None
    name: str | None = None


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
    out = apply_windowing(values, _window_ds(center, width, function))
    out = np.asarray(out, dtype=np.float32)
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
    """The LINEAR_EXACT window (centre, width) mapping min → 0 and max → 1."""
    lo, hi = float(np.min(values)), float(np.max(values))
    return (lo + hi) / 2.0, max(hi - lo, 1e-6)


@dataclass(frozen=True)
class Display:
    """Everything needed to re-render a scan without decoding it again (private to the package).

    ``values`` are float32 modality-LUT values: the chosen frame (H×W[×3]) or, when the volume
    is kept, all frames (N×H×W[×3]). ``file_window`` is the file's (centre, width, function),
    ``voi`` a stripped dataset with the file's VOI LUT Sequence, ``default`` the window used when
    the file has none (rasters and colour: the bit-depth range), ``invert`` MONOCHROME1.
    """

    values: np.ndarray
    frame_index: int
    has_volume: bool
    invert: bool = False
    voi: Dataset | None = None
    file_window: tuple[float, float, str] | None = None
    default: tuple[float, float, str] | None = None   # (centre, width, label) LINEAR_EXACT


def render(display: Display, spec: WindowSpec
           ) -> tuple[np.ndarray, np.ndarray | None, tuple[float, float] | None, str]:
    """Return (pixels, volume or None, (centre, width) or None, window_source)."""
    values = display.values
    window: tuple[float, float] | None
    if spec.kind in ("preset", "manual"):
        assert spec.center is not None and spec.width is not None
        window = (spec.center, spec.width)
        source = f"preset {spec.name}" if spec.kind == "preset" else "manual"
        func = display.file_window[2] if display.file_window else "LINEAR"
        out = window_values(values, spec.center, spec.width,
                            "LINEAR" if func == "SIGMOID" else func)
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


def apply_window(scan: Scan, window: str | tuple[float, float] | None) -> Scan:
    """Return a new :class:`Scan` re-windowed from its stored modality values (no decoding).

    ``window`` is a preset name, ``"min-max"``, ``"C,W"``, ``(C, W)``, or ``None`` for the
    file's own VOI LUT / window (or the loader's default).
    """
    from core.imaging.phi import format_window

    spec = parse_window(window)
    pixels, volume, win, source = render(scan._display, spec)
    metadata = dict(scan.metadata)
    metadata["Window"] = format_window(win, source)
    return dataclasses.replace(scan, pixels=pixels, volume=volume, window=win,
                               window_source=source, metadata=metadata)
