"""The single entry point: :func:`load_scan` (bytes or a path → :class:`Scan`)."""
from __future__ import annotations

import hashlib
import logging
import os
import warnings
from pathlib import Path
from typing import BinaryIO

from core.errors import ScanError
from core.imaging.detect import sniff
from core.imaging.scan import Scan
from core.imaging.windowing import parse_window

__all__ = ["load_scan", "MAX_FILE_BYTES"]

log = logging.getLogger(__name__)

#: Largest input accepted, in bytes (the pixel cap still applies to what it decodes to).
MAX_FILE_BYTES = 2 * 1024 ** 3


def _read_path(path: Path) -> bytes:
    if not path.exists():
        raise ScanError(f"File not found: {path.name}", code="not_found")
    if not path.is_file():
        raise ScanError(f"{path.name} is a folder, not a file: choose one scan (or a .zip).",
                        code="not_a_file")
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise ScanError(f"The file is too large ({size:,} bytes; the limit is "
                            f"{MAX_FILE_BYTES:,}).", code="too_large")
        return path.read_bytes()
    except PermissionError:
        raise ScanError(f"Permission denied reading {path.name}.", code="not_readable") from None
    except OSError as err:
        raise ScanError(f"{path.name} could not be read ({err.strerror or 'I/O error'}).",
                        code="not_readable") from None


def load_scan(data: bytes | str | os.PathLike[str] | BinaryIO, filename: str | None = None, *,
              frame: int | None = None,
              window: str | tuple[float, float] | None = None) -> Scan:
    """Load a DICOM, PNG, JPEG or TIFF scan from bytes, a path, or a binary file object
    (``io.BytesIO``, Streamlit's ``UploadedFile``: its ``name`` becomes ``filename``).

    The format is detected from the content, never the extension. ``frame`` picks a frame of a
    multi-frame file (default: the middle one). ``window`` overrides the display window: a
    name from :data:`WINDOW_PRESETS` (CT, HU), ``"min-max"``, ``"C,W"`` or ``(C, W)``; ``None``
    uses the file's VOI LUT / window, else min–max (DICOM) or the bit-depth range (images).

    Every failure is a :class:`core.errors.ScanError` with a ``code``; nothing else escapes.
    """
    if isinstance(data, (str, os.PathLike)):
        path = Path(data)
        raw = _read_path(path)
        filename = filename or path.name
    elif isinstance(data, (bytes, bytearray, memoryview)):
        raw = bytes(data)
    elif hasattr(data, "getvalue") or hasattr(data, "read"):  # BytesIO, st.UploadedFile
        try:
            raw = data.getvalue() if hasattr(data, "getvalue") else data.read(MAX_FILE_BYTES + 1)
        except (OSError, ValueError) as err:
            raise ScanError("The uploaded file could not be read.", code="not_readable") from err
        if not isinstance(raw, (bytes, bytearray)):
            raise ScanError("The file must be opened in binary mode.", code="invalid")
        raw = bytes(raw)
        filename = filename or (str(getattr(data, "name", "")) or None)
    else:
        raise ScanError(f"Expected file bytes or a path, got {type(data).__name__}.",
                        code="invalid")
    if not raw:
        raise ScanError("The file is empty (0 bytes).", code="empty")
    if len(raw) > MAX_FILE_BYTES:
        raise ScanError(f"The file is too large ({len(raw):,} bytes).", code="too_large")
    if frame is not None and (isinstance(frame, bool) or not isinstance(frame, int)):
        raise ScanError(f"The frame number must be a whole number, got {frame!r}.",
                        code="bad_frame")
    spec = parse_window(window)
    sha = hashlib.sha256(raw).hexdigest()
    fmt = sniff(raw)
    try:
        # Library warnings about malformed values are noise to a clinician (and some echo the
        # value); problems that matter become ScanError. Not thread-safe, but only silences.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if fmt == "dicom":
                from core.imaging.dicom import load_dicom
                return load_dicom(raw, frame=frame, window=spec, sha256=sha, filename=filename)
            from core.imaging.raster import load_raster
            return load_raster(raw, fmt, frame=frame, window=spec, sha256=sha,
                               filename=filename)
    except ScanError as err:
        # Only the hash and the code: file names and metadata may contain PHI.
        log.info("scan %s rejected: %s", sha[:12], err.code)
        raise
    except MemoryError:
        raise ScanError("Not enough memory to open this image.", code="too_large") from None
    except (KeyboardInterrupt, SystemExit, GeneratorExit):
        raise
    except BaseException as err:  # noqa: BLE001 - a library failed in a way we did not foresee
        # (pyo3-based decoders panic with a BaseException subclass)
        log.warning("scan %s: unexpected %s while decoding", sha[:12], type(err).__name__)
        raise ScanError(f"This {fmt.upper()} file is damaged and could not be read.",
                        code="corrupt_pixels") from err
