"""The :class:`Scan` value object: display pixels plus what a clinician needs to know about them."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from core.imaging.windowing import Display

__all__ = ["Scan", "VOLUME_MAX_VOXELS"]

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
