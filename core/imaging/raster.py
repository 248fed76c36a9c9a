"""PNG / JPEG / TIFF loading with Pillow.

* The size is checked from the header (``Image.open`` reads only the header) against
  :func:`core.config.max_pixels` before any pixel is decoded; Pillow's own
  ``DecompressionBombError`` is mapped to the same ``too_large`` error.
* EXIF orientation (tag 0x0112) is applied (:func:`PIL.ImageOps.exif_transpose`).
* Modes: 1/L/LA/I;16*/I/F are grayscale; P/PA (palette), RGB, RGBA, CMYK, YCbCr become RGB.
  Alpha is composited onto black. A colour image whose three channels are identical
  everywhere is treated as grayscale (common for exported scans).
* Scaling policy (deliberate and simple): unsigned integer data is divided by ``2**b - 1``
  where ``b`` is 8 for 8-bit images and, for 16-bit images, the smallest bit depth that holds
  the maximum value (at least 8): so a 12-bit detector exported as 16-bit PNG (max ≤ 4095)
  uses its 12-bit range and is not nearly black, while relative intensities are never
  stretched per image. Signed or float data (TIFF ``I``/``F``) is min–max scaled unless
  already in [0, 1]. The choice is reported in ``Scan.window_source`` ("8-bit range",
  "12-bit range", "min-max").
* Multi-page TIFF: each page is a frame (default the middle one); the stack is kept as
  ``volume`` when all pages have the same size and fit :data:`VOLUME_MAX_VOXELS`.
* Pixel spacing is not read from DPI (usually meaningless for exports): always ``None``.
"""
from __future__ import annotations

import io
import logging
import re
import struct
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from core.config import max_pixels
from core.errors import ScanError
from core.imaging.phi import format_window
from core.imaging.scan import (VOLUME_MAX_VOXELS, Scan, constant_window, finite_range,
                               finite_values)
from core.imaging.windowing import Display, WindowSpec, render

__all__ = ["load_raster"]

log = logging.getLogger(__name__)

_PIL_FORMATS = {"png": "PNG", "jpeg": "JPEG", "tiff": "TIFF"}
_GRAY_MODES = {"1", "L", "LA", "La", "I", "F", "I;16", "I;16L", "I;16B", "I;16N"}


def _too_large(err: Exception) -> ScanError:
    """Pillow's own decompression-bomb refusal (at twice ``Image.MAX_IMAGE_PIXELS``) in the
    project's words and with the project's limit, not Pillow's."""
    cap = max_pixels()
    found = re.search(r"\((\d+) pixels\)", str(err))
    size = int(found.group(1)) if found else None
    if size is None or size > cap:
        told = f"{size:,} pixels exceeds" if size else "it exceeds"
        return ScanError(f"The image is too large: {told} the limit of {cap:,} pixels "
                         "(MEDSCAN_MAX_PIXELS), checked before decoding.", code="too_large")
    return ScanError(f"The image is too large: {size:,} pixels is within MEDSCAN_MAX_PIXELS "
                     f"({cap:,}) but above the {2 * (Image.MAX_IMAGE_PIXELS or 0):,} pixels "
                     "that the image decoder (Pillow) opens safely.", code="too_large")


def _open(data: bytes, fmt: str) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data), formats=[_PIL_FORMATS[fmt]])
    except Image.DecompressionBombError as err:
        raise _too_large(err) from None
    except (UnidentifiedImageError, SyntaxError, ValueError, struct.error) as err:
        raise ScanError(f"The {fmt.upper()} header is damaged or incomplete.",
                        code="truncated" if len(data) < 64 else "corrupt_header") from err
    except (OSError, EOFError) as err:
        raise ScanError(f"The {fmt.upper()} file is truncated: it ends inside its header.",
                        code="truncated") from err
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as err:  # noqa: BLE001 - Pillow plugins raise TypeError, KeyError, ...
        raise ScanError(f"The {fmt.upper()} header is damaged and cannot be read.",
                        code="corrupt_header") from err
    return im


def _check_size(im: Image.Image) -> None:
    width, height = im.size
    cap = max_pixels()
    if width <= 0 or height <= 0:
        raise ScanError(f"The image header says the image is {width} × {height} pixels.",
                        code="corrupt_header")
    if width * height > cap:
        raise ScanError(f"The image is too large: {height} × {width} = {width * height:,} "
                        f"pixels exceeds the limit of {cap:,} pixels (MEDSCAN_MAX_PIXELS), "
                        "checked before decoding.", code="too_large")


def _to_array(im: Image.Image, fmt: str) -> tuple[np.ndarray, bool]:
    """Decode one frame; return (array H×W or H×W×3, is_color)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            im.load()
            im = ImageOps.exif_transpose(im)
            mode = im.mode
            if mode in ("1", "LA", "La"):
                im = im.convert("L")
            elif mode in ("P", "PA", "RGBA", "RGBa"):
                im = im.convert("RGBA")
            elif mode not in _GRAY_MODES and mode != "RGB":
                im = im.convert("RGB")
            arr = np.asarray(im)
    except Image.DecompressionBombError as err:
        raise _too_large(err) from None
    except (OSError, EOFError, SyntaxError, ValueError, struct.error) as err:
        text = str(err).lower()
        if "truncated" in text or "premature" in text or isinstance(err, EOFError) or \
                "end of file" in text or "broken data stream" in text:
            raise ScanError(f"The {fmt.upper()} file is truncated: the image data ends early.",
                            code="truncated") from err
        raise ScanError(f"The {fmt.upper()} image data is damaged and cannot be decoded.",
                        code="corrupt_pixels") from err
    except (KeyboardInterrupt, SystemExit, MemoryError):
        raise
    except Exception as err:  # noqa: BLE001 - e.g. TypeError/KeyError from a damaged tag
        raise ScanError(f"The {fmt.upper()} image data is damaged and cannot be decoded.",
                        code="corrupt_pixels") from err
    if arr.ndim == 3 and arr.shape[2] == 4:
        alpha = arr[..., 3:4].astype(np.float32) / 255.0
        arr = np.rint(arr[..., :3].astype(np.float32) * alpha).astype(np.uint8)
    if arr.ndim == 3 and arr.shape[2] == 3:
        if np.array_equal(arr[..., 0], arr[..., 1]) and np.array_equal(arr[..., 0], arr[..., 2]):
            return arr[..., 0], False
        return arr, True
    return arr, False


def _scaling(raw: np.ndarray) -> tuple[float, float, str] | None:
    """Default window (centre, width, label) from the policy in the module docstring;
    ``None`` means min–max."""
    if raw.dtype == np.uint8:
        return 127.5, 255.0, "8-bit range"
    lo, hi = float(raw.min()), float(raw.max())
    if raw.dtype.kind == "f":
        return (0.5, 1.0, "0-1 range") if lo >= 0.0 and hi <= 1.0 else None
    if lo >= 0 and hi <= 65535:
        bits = max(8, int(hi).bit_length())
        top = float(2 ** bits - 1)
        return top / 2, top, f"{bits}-bit range"
    return None


def load_raster(data: bytes, fmt: str, *, frame: int | None, window: WindowSpec, sha256: str,
                filename: str | None) -> Scan:
    """Decode a PNG, JPEG or TIFF into a :class:`Scan`."""
    im = _open(data, fmt)
    _check_size(im)
    try:  # for TIFF this walks the page directory (IFDs), which may be damaged
        n_frames = max(int(getattr(im, "n_frames", 1) or 1), 1)
    except (KeyboardInterrupt, SystemExit):
        raise
    except (EOFError, OSError) as err:
        raise ScanError(f"The {fmt.upper()} file is truncated: its page list ends early.",
                        code="truncated") from err
    except Exception as err:  # noqa: BLE001 - Pillow raises TypeError/ValueError/... here
        raise ScanError(f"The {fmt.upper()} header is damaged and cannot be read.",
                        code="corrupt_header") from err
    index = n_frames // 2 if frame is None else frame
    if not 0 <= index < n_frames:
        raise ScanError(f"Frame {frame} does not exist: this image has {n_frames} frame(s) "
                        f"(0 to {n_frames - 1}).", code="bad_frame")
    width, height = im.size
    keep_volume = n_frames > 1 and n_frames * width * height * 3 <= VOLUME_MAX_VOXELS
    frames: list[np.ndarray] = []
    is_color = False
    for i in range(n_frames) if keep_volume else [index]:
        try:
            im.seek(i)
        except (EOFError, OSError) as err:
            raise ScanError(f"The {fmt.upper()} file is truncated: frame {i} is missing.",
                            code="truncated") from err
        _check_size(im)
        arr, colour = _to_array(im, fmt)
        frames.append(arr)
        is_color = is_color or colour
    if keep_volume and len({a.shape[:2] for a in frames}) > 1:
        keep_volume, frames = False, [frames[index]]
    if keep_volume:
        if is_color:
            frames = [np.repeat(a[..., None], 3, axis=2) if a.ndim == 2 else a for a in frames]
        elif any(a.ndim == 3 for a in frames):
            frames = [a[..., 0] if a.ndim == 3 else a for a in frames]
        raw = np.stack(frames)
    else:
        raw = frames[0]
        is_color = raw.ndim == 3
    mode = im.mode
    im.close()
    del frames
    original_dtype = str(raw.dtype)
    original_range = finite_range(raw)
    raw, notes = finite_values(raw)
    # Unsigned integer data is windowed as stored (chunks are converted on the fly): a float32
    # copy would cost 4 bytes per pixel for nothing. Anything else becomes float32.
    values = raw if raw.dtype.kind == "u" else raw.astype(np.float32, copy=False)
    display = Display(values=values, frame_index=index, has_volume=keep_volume,
                      default=_scaling(raw) or constant_window(raw))
    pixels, volume, win, source = render(display, window)
    h, w = pixels.shape[:2]
    metadata = {
        "Format": fmt.upper(),
        "Size": f"{h} × {w}",
        "Frames": f"{n_frames} (showing {index})" if n_frames > 1 else "1",
        "Colour": "RGB" if is_color else "grayscale",
        "Stored as": f"{original_dtype}, mode {mode}",
        "Pixel spacing": "unknown",
        "Window": format_window(win, source),
    }
    return Scan(pixels=pixels, is_color=is_color, n_frames=n_frames, frame_index=index,
                volume=volume, source_format=fmt, original_dtype=original_dtype,
                original_range=original_range, pixel_spacing=None, modality=None,
                body_part=None, window=win, window_source=source, metadata=metadata,
                sha256=sha256, filename=filename, _display=display, warnings=notes)
