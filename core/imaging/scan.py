"""The :class:`Scan` value object: display pixels plus what a clinician needs to know about them."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from core.errors import ScanError
from core.imaging.windowing import Display

__all__ = ["Scan", "VOLUME_MAX_VOXELS", "finite_values", "finite_range", "constant_window"]

#: Multi-frame files keep all frames in :attr:`Scan.volume` only up to this many voxels
#: (frames × rows × columns × samples; 32 Mi ≈ 128 MB of float32 per copy). Larger files decode
#: only the chosen frame and ``volume`` is ``None``.
VOLUME_MAX_VOXELS = 32 * 1024 * 1024


@dataclass(frozen=True, eq=False)
class Scan:
    """One loaded scan (arrays are read-only).

    ``pixels`` is float32 in [0, 1], H×W (grayscale) or H×W×3 (colour), after modality LUT,
    VOI LUT / window and MONOCHROME1 inversion: exactly what the app shows and the models get.
    ``volume`` is N×H×W[×3] with the same rendering for multi-frame files that fit
    :data:`VOLUME_MAX_VOXELS`, else ``None``. ``original_dtype`` / ``original_range`` describe
    the stored values before any LUT; ``pixel_spacing`` is (row, column) in mm from
    (0028,0030) Pixel Spacing, else (0018,1164) Imager Pixel Spacing, else ``None`` (always
    ``None`` for PNG/JPEG/TIFF). ``window`` is the (centre, width) used, or ``None`` when a
    VOI LUT table was applied; ``window_source`` says where it came from ("file VOI LUT",
    "file window", "preset brain", "manual", "min-max", "8-bit range", ...). ``metadata`` is a
    display-ready summary with PHI masked. ``sha256`` is the hash of the input bytes.
    ``warnings`` are plain-language notes about the input that the app shows next to the
    image (e.g. pixels that were not finite numbers and were replaced).

    Invariant, checked on every construction (so no loader, re-window or ``replace`` can break
    it): ``pixels`` is float32, H×W or H×W×3, every value finite and in [0, 1]; ``volume`` is
    ``None`` or float32 N×(pixels' shape) in [0, 1]; ``window`` is ``None`` or a finite centre
    with a finite width > 0. A violation raises :class:`ScanError` (``corrupt_pixels``)
    instead of reaching a page or a model.
    """

    pixels: np.ndarray
    is_color: bool
    n_frames: int
    frame_index: int
    volume: np.ndarray | None
    source_format: str
    original_dtype: str
    original_range: tuple[float, float]
    pixel_spacing: tuple[float, float] | None
    modality: str | None
    body_part: str | None
    window: tuple[float, float] | None
    window_source: str
    metadata: dict[str, str]
    sha256: str
    filename: str | None = None
    _display: Display | None = field(default=None, repr=False)
    warnings: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _check_pixels(self.pixels, "image")
        if self.volume is not None:
            if self.volume.shape[1:] != self.pixels.shape:
                raise ScanError(f"The decoded frames ({_shape(self.volume)}) do not match the "
                                f"shown image ({_shape(self.pixels)}).", code="corrupt_pixels")
            _check_pixels(self.volume[0], "volume")
            _check_range(self.volume, "volume")
        if self.window is not None:
            centre, width = self.window
            if not (math.isfinite(centre) and math.isfinite(width) and width > 0):
                raise ScanError(f"The display window (centre {centre}, width {width}) is not "
                                "valid.", code="corrupt_pixels")
        if not isinstance(self.warnings, tuple):
            object.__setattr__(self, "warnings", tuple(self.warnings))

    def __repr__(self) -> str:
        # Short and PHI-free: no file name (it may hold a patient's name), no metadata.
        window = f"C {self.window[0]:g}/W {self.window[1]:g}" if self.window else "-"
        return (f"Scan({self.source_format}, {self.modality or '-'}, "
                f"{'×'.join(map(str, self.pixels.shape))}, frame {self.frame_index} of "
                f"{self.n_frames}, window {window} ({self.window_source}), "
                f"sha256 {self.sha256[:12]})")

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.pixels.shape)

    @property
    def modality_values(self) -> np.ndarray | None:
        """The decoded modality-LUT values (Hounsfield units on CT) the window is applied to:
        the shown frame (H×W[×3]) or, when the volume is kept, every frame; None when the
        scan was built without them."""
        return None if self._display is None else self._display.values

    @property
    def inverted(self) -> bool:
        """MONOCHROME1: low values are shown bright."""
        return bool(self._display is not None and self._display.invert)

    def to_uint8(self) -> np.ndarray:
        """The displayed image as uint8 (round(pixels × 255)): what the app shows and
        ``python -m core convert`` writes."""
        from core.imaging.export import to_uint8

        return to_uint8(self.pixels)

    def stats(self) -> dict[str, object]:
        """Pixel statistics of the displayed image (for ``inspect``)."""
        px = self.pixels
        return {
            "shape": list(px.shape),
            "frames": self.n_frames,
            "frame_index": self.frame_index,
            "is_color": self.is_color,
            "min": round(float(px.min()), 6),
            "max": round(float(px.max()), 6),
            "mean": round(float(px.mean()), 6),
            "std": round(float(px.std()), 6),
            "original_dtype": self.original_dtype,
            "original_range": [float(v) for v in self.original_range],
            "window": list(self.window) if self.window else None,
            "window_source": self.window_source,
            "pixel_spacing_mm": list(self.pixel_spacing) if self.pixel_spacing else None,
        }


def _shape(arr: np.ndarray) -> str:
    return " × ".join(map(str, arr.shape))


def _check_range(arr: np.ndarray, what: str) -> None:
    # min/max propagate NaN and see ±inf, so no full-size temporary is needed.
    lo, hi = (float(arr.min()), float(arr.max())) if arr.size else (0.0, 0.0)
    if not (0.0 <= lo <= hi <= 1.0):
        raise ScanError(f"The decoded {what} has values outside 0–1 or that are not numbers "
                        f"({lo:g} to {hi:g}).", code="corrupt_pixels")


def _check_pixels(px: np.ndarray, what: str) -> None:
    if not isinstance(px, np.ndarray) or px.dtype != np.float32:
        raise ScanError(f"The decoded {what} is not a float32 array.", code="corrupt_pixels")
    if not (px.ndim == 2 or (px.ndim == 3 and px.shape[2] == 3)) or 0 in px.shape:
        raise ScanError(f"The decoded {what} has an unusable shape ({_shape(px)}): expected "
                        "rows × columns (greyscale) or rows × columns × 3 (colour).",
                        code="corrupt_pixels")
    if what == "image":
        _check_range(px, what)


def finite_range(arr: np.ndarray) -> tuple[float, float]:
    """(min, max) of the finite values of ``arr`` ((nan, nan) when there are none)."""
    lo, hi = float(np.min(arr)), float(np.max(arr))
    if math.isfinite(lo) and math.isfinite(hi):
        return lo, hi
    finite = arr[np.isfinite(arr)]
    if finite.size == 0:
        return math.nan, math.nan
    return float(finite.min()), float(finite.max())


def finite_values(values: np.ndarray) -> tuple[np.ndarray, tuple[str, ...]]:
    """Return ``values`` with NaN and ±infinity replaced, plus the warning to show.

    NaN and -inf become the lowest finite value, +inf the highest, so the finite pixels keep
    their order and the window is computed from real data. An image with no finite value at
    all raises :class:`ScanError` (``non_finite``): there is nothing to show or classify.
    Integer arrays are returned unchanged (they cannot hold non-finite values).
    """
    if values.dtype.kind != "f":
        return values, ()
    lo, hi = float(np.min(values)), float(np.max(values))
    if math.isfinite(lo) and math.isfinite(hi):
        return values, ()
    bad = ~np.isfinite(values)
    n_bad = int(np.count_nonzero(bad))
    if n_bad == values.size:
        raise ScanError("The image has no finite pixel values (every pixel is NaN, 'not a "
                        "number', or infinite), so there is nothing to show or classify. The "
                        "file's rescale slope/intercept or its pixel data are probably damaged.",
                        code="non_finite")
    lo, hi = finite_range(values)
    out = np.array(values, copy=True)
    out[np.isnan(out) | np.isneginf(out)] = lo
    out[np.isposinf(out)] = hi
    share = n_bad / values.size
    pixels = "1 pixel" if n_bad == 1 else f"{n_bad:,} pixels"
    return out, (f"{pixels} ({share:.2%} of the image) had no finite value (NaN or infinite) "
                 "and are shown as the lowest or highest finite value; the file may be "
                 "damaged, so check it in your viewer.",)


def constant_window(values: np.ndarray) -> tuple[float, float, str] | None:
    """For an image whose values are all equal (e.g. (0028,1053) Rescale Slope 0): a window of
    width 1 centred on that value (shown mid-grey), as (centre, width, label); else ``None``.
    Min–max would give a zero-width window."""
    if values.size == 0:
        return None
    lo, hi = float(np.min(values)), float(np.max(values))
    return (lo, 1.0, "constant image") if lo == hi else None
