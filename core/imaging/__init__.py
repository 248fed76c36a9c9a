"""Scan loading: DICOM, PNG, JPEG, TIFF → :class:`Scan` (float32 pixels in [0, 1] + metadata).

Public API::

    load_scan(data, filename=None, *, frame=None, window=None) -> Scan
    apply_window(scan, window) -> Scan        # re-window without decoding again
    load_uploads(name, data) -> list[Upload]  # one file or a .zip of files
    WINDOW_PRESETS                            # CT presets in HU; "min-max" → None

Errors are always :class:`core.errors.ScanError` with a ``code`` (empty, truncated,
unknown_format, corrupt_header, no_pixel_data, decoder_missing, too_large, corrupt_pixels,
excess_pixel_data, non_finite, bad_frame, bad_window, zip_error, not_found, not_a_file,
not_readable). A loaded :class:`Scan` always has float32 pixels, H×W or H×W×3, finite, in
[0, 1] (checked when it is built); ``scan.warnings`` lists what was corrected on the way.
"""
from __future__ import annotations

from core.errors import ScanError
from core.imaging.export import png_bytes, to_uint8, write_png
from core.imaging.load import load_scan
from core.imaging.scan import VOLUME_MAX_VOXELS, Scan
from core.imaging.windowing import MIN_MAX, WINDOW_PRESETS, apply_window, parse_window
from core.imaging.zipped import Upload, load_uploads

__all__ = ["load_scan", "to_uint8", "png_bytes", "write_png", "Scan", "ScanError", "WINDOW_PRESETS", "MIN_MAX", "apply_window",
           "parse_window", "load_uploads", "Upload", "VOLUME_MAX_VOXELS"]
