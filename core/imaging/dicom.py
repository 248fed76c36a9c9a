"""DICOM loading through pydicom's own pixel pipeline (:mod:`pydicom.pixels`).

Order (PS3.4 N.2): decode (with YBR_FULL / YBR_FULL_422 → RGB done by pydicom) → modality LUT
or (0028,1053) Rescale Slope / (0028,1052) Rescale Intercept → (0028,3010) VOI LUT Sequence or
(0028,1050) Window Center / (0028,1051) Window Width (or an override) → MONOCHROME1 inversion
(or Presentation LUT Shape INVERSE on MONOCHROME2).
PALETTE COLOR goes through :func:`pydicom.pixels.apply_color_lut`. Enhanced multi-frame files
take rescale and window from the Shared / Per-frame Functional Groups when the top level lacks
them.

Everything that is checked before decoding comes from the header only: (0028,0010) Rows ×
(0028,0011) Columns × (0028,0008) Number of Frames against the pixel cap, the decoder for
(0002,0010) Transfer Syntax UID, and the length of native (0x7FE0,0010) Pixel Data.
"""
from __future__ import annotations

import io
import logging
import math
import warnings
from typing import Any

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.errors import InvalidDicomError
from pydicom.pixels import apply_color_lut, apply_modality_lut, get_decoder, pixel_array
from pydicom.pixels.utils import get_expected_length, get_nr_frames
from pydicom.uid import UID, ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from core.config import max_pixels
from core.errors import ScanError
from core.imaging.phi import (clean_descriptor, dicom_identifiers, dicom_summary,
                              format_spacing, format_window)
from core.imaging.scan import (VOLUME_MAX_VOXELS, Scan, constant_window, finite_range,
                               finite_values)
from core.imaging.windowing import Display, WindowSpec, render

__all__ = ["load_dicom", "DECODER_PACKAGES"]

log = logging.getLogger(__name__)

# pydicom logs invalid element values on read (they may contain PHI): never validate on read.
pydicom.config.settings.reading_validation_mode = pydicom.config.IGNORE

#: pip package that decodes each compressed transfer syntax (named in decoder_missing errors).
DECODER_PACKAGES: dict[str, str] = {
    "1.2.840.10008.1.2.4.50": "pylibjpeg-libjpeg (or pillow)",   # JPEG Baseline
    "1.2.840.10008.1.2.4.51": "pylibjpeg-libjpeg (or pillow)",   # JPEG Extended
    "1.2.840.10008.1.2.4.57": "pylibjpeg-libjpeg",               # JPEG Lossless P14
    "1.2.840.10008.1.2.4.70": "pylibjpeg-libjpeg",               # JPEG Lossless SV1
    "1.2.840.10008.1.2.4.80": "pyjpegls",                        # JPEG-LS Lossless
    "1.2.840.10008.1.2.4.81": "pyjpegls",                        # JPEG-LS Near-lossless
    "1.2.840.10008.1.2.4.90": "pylibjpeg-openjpeg",              # JPEG 2000 Lossless
    "1.2.840.10008.1.2.4.91": "pylibjpeg-openjpeg",              # JPEG 2000
    "1.2.840.10008.1.2.4.201": "pylibjpeg-openjpeg",             # HTJ2K
    "1.2.840.10008.1.2.4.202": "pylibjpeg-openjpeg",
    "1.2.840.10008.1.2.4.203": "pylibjpeg-openjpeg",
    "1.2.840.10008.1.2.5": "pylibjpeg-rle",                      # RLE (pydicom has its own)
}

_PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")


def _read(data: bytes) -> Dataset:
    if data[:4] == b"DICM":  # "DICM" prefix without the 128-byte preamble
        data = b"\x00" * 128 + data
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(io.BytesIO(data), force=True)
    except (EOFError, OSError) as err:
        raise ScanError("The DICOM file is truncated: it ends in the middle of its header.",
                        code="truncated") from err
    except (KeyboardInterrupt, SystemExit):
        raise
    except (InvalidDicomError, Exception) as err:  # noqa: BLE001 - any parse failure
        raise ScanError("The DICOM header is damaged and cannot be read.",
                        code="corrupt_header") from err
    _parse_all(ds)
    if len(ds) == 0:
        if getattr(ds, "file_meta", None) and "TransferSyntaxUID" in ds.file_meta:
            raise ScanError("The DICOM file is truncated: it ends right after its file header.",
                            code="truncated")
        raise ScanError("The DICOM file is damaged: no data elements could be read.",
                        code="corrupt_header")
    return ds


def _parse_all(ds: Dataset) -> None:
    """pydicom parses elements lazily: convert them all now so bad VRs and values fail here.

    A failure in the last element means the file was cut short (``truncated``); anywhere
    else the header is damaged (``corrupt_header``).
    """
    tags = list(ds.keys())
    meta = getattr(ds, "file_meta", None)
    for tag in tags:
        try:
            elem = ds[tag]
            if elem.VR == "SQ":
                for item in elem.value:
                    item.walk(lambda _ds, _elem: None)
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as err:  # noqa: BLE001 - any parse failure
            if tag == tags[-1]:
                raise ScanError("The DICOM file is truncated: it ends in the middle of an "
                                "element.", code="truncated") from err
            raise ScanError("The DICOM header is damaged and cannot be read.",
                            code="corrupt_header") from err
    try:
        if meta:
            meta.walk(lambda _ds, _elem: None)
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as err:  # noqa: BLE001
        raise ScanError("The DICOM file header (group 0002) is damaged.",
                        code="corrupt_header") from err


def _transfer_syntax(ds: Dataset) -> UID:
    """(0002,0010) Transfer Syntax UID, inferred from the encoding when the file meta lacks it."""
    meta = getattr(ds, "file_meta", None)
    if meta is None:
        meta = ds.file_meta = FileMetaDataset()
    ts = meta.get("TransferSyntaxUID")
    if ts:
        return UID(str(ts))
    implicit, little = getattr(ds, "original_encoding", (None, None))
    if implicit is None:
        implicit, little = True, True
    ts = (ImplicitVRLittleEndian if implicit
          else ExplicitVRLittleEndian if little else ExplicitVRBigEndian)
    meta.TransferSyntaxUID = ts
    return UID(ts)


def _sop_class(ds: Dataset) -> UID | None:
    """(0008,0016) SOP Class UID, else (0002,0002) Media Storage SOP Class UID."""
    sop = ds.get("SOPClassUID") or getattr(ds, "file_meta", Dataset()).get(
        "MediaStorageSOPClassUID")
    return UID(str(sop)) if sop else None


def _missing_pixels_error(ds: Dataset) -> ScanError:
    """No (7FE0,0010) Pixel Data: a non-image object, or an image file cut short."""
    sop = _sop_class(ds)
    name = sop.name if sop is not None and sop.name != str(sop) else ""
    if "Rows" in ds or "Image Storage" in name:
        return ScanError("The DICOM file is truncated: it describes an image but ends before "
                         "the pixel data.", code="truncated")
    if sop is None and "Modality" not in ds:
        return ScanError("The DICOM file is damaged: no image header was found.",
                         code="corrupt_header")
    if str(sop) == "1.2.840.10008.1.3.10":
        kind = "a DICOMDIR (an index of other files)"
    else:
        kind = name or f"a {ds.get('Modality') or 'non-image'} object"
    return ScanError(f"This DICOM file has no image: it is {kind}, which holds no pixel data "
                     "(structured reports, RT structures and presentation states have none).",
                     code="no_pixel_data")


def _header_int(ds: Dataset, keyword: str, tag: str) -> int:
    value = ds.get(keyword)
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ScanError(f"The DICOM header has no valid {tag} {keyword}.",
                        code="corrupt_header") from None


def _check_header(ds: Dataset) -> tuple[int, int, int]:
    rows = _header_int(ds, "Rows", "(0028,0010)")
    cols = _header_int(ds, "Columns", "(0028,0011)")
    if rows <= 0 or cols <= 0:
        raise ScanError(f"The DICOM header says the image is {rows} × {cols} pixels.",
                        code="corrupt_header")
    try:
        frames = max(int(get_nr_frames(ds, warn=False)), 1)
    except (TypeError, ValueError):
        raise ScanError("The DICOM header has an invalid (0028,0008) Number of Frames.",
                        code="corrupt_header") from None
    cap = max_pixels()
    if rows * cols * frames > cap:
        raise ScanError(f"The image is too large: {rows} × {cols} pixels × {frames} frame(s) "
                        f"exceeds the limit of {cap:,} pixels (MEDSCAN_MAX_PIXELS), checked "
                        "before decoding.", code="too_large")
    bits_alloc = ds.get("BitsAllocated")
    bits_stored = ds.get("BitsStored")
    if "PixelData" in ds:
        if bits_alloc not in (1, 8, 16, 32, 64):
            raise ScanError(f"The DICOM header has an invalid (0028,0100) Bits Allocated "
                            f"({bits_alloc}).", code="corrupt_pixels")
        if bits_stored is None or not 1 <= int(bits_stored) <= int(bits_alloc):
            raise ScanError(f"The DICOM header's (0028,0101) Bits Stored ({bits_stored}) does "
                            f"not fit (0028,0100) Bits Allocated ({bits_alloc}).",
                            code="corrupt_pixels")
    return rows, cols, frames


def _check_decoder(ts: UID) -> None:
    try:
        decoder = get_decoder(ts)
    except NotImplementedError:
        name = ts.name if ts.is_transfer_syntax else f"unknown transfer syntax {ts}"
        raise ScanError(f"No decoder exists for this file's compression ({name}); convert it "
                        "to an uncompressed DICOM first.", code="decoder_missing") from None
    if not decoder.is_available:
        package = DECODER_PACKAGES.get(str(ts), "a pydicom pixel-data plugin")
        raise ScanError(f"This file is compressed as {ts.name} and the decoder for it is not "
                        f"installed: pip install {package}.", code="decoder_missing")


def _check_native_length(ds: Dataset, ts: UID, rows: int, cols: int,
                         frames: int) -> str | None:
    """Native (uncompressed) (7FE0,0010) Pixel Data must hold exactly Rows × Columns × frames ×
    samples × Bits Allocated, plus at most one pad byte (PS3.5 8.1.1: values have even length).

    Too short: ``truncated``; the length of other-bit pixels: ``corrupt_pixels`` (Bits
    Allocated is wrong); a surplus of one frame or more: ``excess_pixel_data`` (pydicom would
    read it as extra frames, so the header and the data disagree about the image). A smaller
    surplus is trailing padding: ignored, and the returned warning says so.
    """
    if ts.is_encapsulated or "PixelData" not in ds:
        return None
    try:
        expected = int(get_expected_length(ds, "bytes"))
    except Exception:
        return None
    actual = len(ds.PixelData)
    if expected <= actual <= expected + expected % 2:
        return None
    bits = int(ds.BitsAllocated)
    samples = int(ds.get("SamplesPerPixel") or 1)
    n_values = rows * cols * frames * samples
    for other in (1, 8, 16, 32, 64):
        if other != bits and abs(actual - (n_values * other + 7) // 8) <= 1:
            raise ScanError(f"The pixel data does not match the header: (0028,0100) Bits "
                            f"Allocated says {bits} bit(s) per pixel but the data holds "
                            f"{other}-bit pixels ({actual:,} bytes).", code="corrupt_pixels")
    if actual < expected:
        raise ScanError(f"The pixel data is truncated: {actual:,} of {expected:,} bytes are "
                        "present.", code="truncated")
    surplus = actual - expected
    if surplus * frames >= expected:  # at least one whole frame more than the header says
        raise ScanError(f"The pixel data is longer than the header describes: {actual:,} "
                        f"bytes for {rows} × {cols} pixels × {frames} frame(s) at {bits} "
                        f"bit(s), which need {expected:,}. (0028,0010) Rows, (0028,0011) "
                        "Columns, (0028,0008) Number of Frames or (0028,0100) Bits Allocated "
                        "must be wrong, so the image cannot be shown reliably.",
                        code="excess_pixel_data")
    return (f"The pixel data has {surplus:,} more bytes than the image needs (less than one "
            "frame); they were ignored.")


def _get(ds: Dataset, frame: int, seq: str, keyword: str) -> Any:
    """Top-level attribute, else from Per-frame then Shared Functional Groups (enhanced IODs)."""
    if keyword in ds:
        return ds[keyword].value
    for groups_kw, index in (("PerFrameFunctionalGroupsSequence", frame),
                             ("SharedFunctionalGroupsSequence", 0)):
        groups = ds.get(groups_kw)
        if groups and len(groups) > index:
            inner = groups[index].get(seq)
            if inner and keyword in inner[0]:
                return inner[0][keyword].value
    return None


def _frame_view(ds: Dataset, frame: int) -> Dataset:
    """A small dataset with only the Modality LUT inputs for ``frame`` (no PHI, no pixels)."""
    view = Dataset()
    for kw in ("BitsStored", "BitsAllocated", "PixelRepresentation", "PhotometricInterpretation",
               "ModalityLUTSequence"):
        if kw in ds:
            setattr(view, kw, ds[kw].value)
    for kw in ("RescaleSlope", "RescaleIntercept", "RescaleType"):
        value = _get(ds, frame, "PixelValueTransformationSequence", kw)
        if value is not None and value != "":
            setattr(view, kw, value)
    if "RescaleSlope" in view and "RescaleIntercept" not in view:
        view.RescaleIntercept = 0
    if "RescaleIntercept" in view and "RescaleSlope" not in view:
        view.RescaleSlope = 1
    return view


def _first(value: Any) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        value = value[0] if len(value) else None
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _file_window(ds: Dataset, frame: int) -> tuple[float, float, str] | None:
    center = _first(_get(ds, frame, "FrameVOILUTSequence", "WindowCenter"))
    width = _first(_get(ds, frame, "FrameVOILUTSequence", "WindowWidth"))
    if center is None or width is None or not (math.isfinite(center) and math.isfinite(width)
                                               and width > 0):
        return None
    func = str(_get(ds, frame, "FrameVOILUTSequence", "VOILUTFunction") or "LINEAR").upper()
    if func not in ("LINEAR", "LINEAR_EXACT", "SIGMOID"):
        func = "LINEAR"
    return center, width, func


def _file_windows(ds: Dataset, frame: int) -> tuple[tuple[float, float, str, str], ...]:
    """Every (0028,1050)/(0028,1051) window pair (multi-valued: PS3.3 C.11.2.1.2) as
    (centre, width, function, explanation); the (0028,1055) explanation only when it is a
    clean descriptor (free text, see :func:`core.imaging.phi.clean_descriptor`)."""
    centers = _get(ds, frame, "FrameVOILUTSequence", "WindowCenter")
    widths = _get(ds, frame, "FrameVOILUTSequence", "WindowWidth")
    texts = _get(ds, frame, "FrameVOILUTSequence", "WindowCenterWidthExplanation")
    func = str(_get(ds, frame, "FrameVOILUTSequence", "VOILUTFunction") or "LINEAR").upper()
    func = func if func in ("LINEAR", "LINEAR_EXACT", "SIGMOID") else "LINEAR"

    def items(value: Any) -> list[Any]:
        if value is None or value == "":
            return []
        return list(value) if isinstance(value, (list, tuple)) or type(
            value).__name__ == "MultiValue" else [value]

    ids = dicom_identifiers(ds)
    explained = [clean_descriptor(t, ids) for t in items(texts)]
    out = []
    for i, (c, w) in enumerate(zip(items(centers), items(widths))):
        center, width = _first(c), _first(w)
        if center is None or width is None or not width > 0 or not np.isfinite(center + width):
            continue
        text = explained[i] if i < len(explained) and explained[i] != "***" else ""
        out.append((center, width, func, text))
    return tuple(out)


def _voi_view(ds: Dataset, ts: UID) -> Dataset | None:
    seq = ds.get("VOILUTSequence")
    if not seq or "LUTDescriptor" not in seq[0] or "LUTData" not in seq[0]:
        return None
    view = Dataset()
    view.file_meta = FileMetaDataset()
    view.file_meta.TransferSyntaxUID = ts
    view.VOILUTSequence = seq
    return view


def _spacing(ds: Dataset) -> tuple[float, float] | None:
    for keyword in ("PixelSpacing", "ImagerPixelSpacing"):
        value = _get(ds, 0, "PixelMeasuresSequence", keyword)
        try:
            if value is not None and len(value) == 2:
                row, col = float(value[0]), float(value[1])
                if row > 0 and col > 0:
                    return row, col
        except (TypeError, ValueError):
            continue
    return None


def _decode(ds: Dataset, index: int | None) -> np.ndarray:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # Never read surplus data as extra frames (pydicom allows it by default).
            return np.asarray(pixel_array(ds, index=index, allow_excess_frames=False))
    except ScanError:
        raise
    except (KeyboardInterrupt, SystemExit, GeneratorExit, MemoryError):
        raise
    except BaseException as err:  # noqa: BLE001 - Rust decoders (pyo3) panic with BaseException
        log.info("pixel decoding failed: %s", type(err).__name__)
        raise ScanError("The image data in this DICOM file is damaged and cannot be decoded.",
                        code="corrupt_pixels") from err


#: Values converted per step by the modality LUT, so its float64 temporaries stay small.
_CHUNK = 1 << 20


def _modality_into(out: np.ndarray, raw: np.ndarray, view: Dataset) -> None:
    """``out[...] = apply_modality_lut(raw, view)`` as float32, a chunk at a time: pydicom
    computes in float64, which for a 100-megapixel image would be 800 MB at once."""
    if not any(kw in view for kw in ("RescaleSlope", "RescaleIntercept", "ModalityLUTSequence")):
        out[...] = raw
        return
    flat_in, flat_out = raw.reshape(-1), out.reshape(-1)
    for start in range(0, flat_in.size, _CHUNK):
        stop = start + _CHUNK
        flat_out[start:stop] = apply_modality_lut(flat_in[start:stop], view)


def _check_decoded_shape(raw: np.ndarray, rows: int, cols: int, frames: int,
                         samples: int) -> None:
    """The decoder's output must be exactly what the header describes (a compressed stream
    may decode to another size)."""
    want = ((frames,) if frames > 1 else ()) + (rows, cols) + ((samples,) if samples > 1 else ())
    if raw.shape != want:
        raise ScanError(f"The decoded pixel data ({' × '.join(map(str, raw.shape))}) does not "
                        f"match the header ({' × '.join(map(str, want))}).",
                        code="corrupt_pixels")


def _inverted(ds: Dataset, photometric: str) -> bool:
    """Whether low values display white: MONOCHROME1, or (2050,0020) Presentation LUT Shape
    INVERSE on a MONOCHROME2 image (PS3.3 C.11.6: "output after inversion is in P-Values";
    some mammography and secondary-capture exports use it). For MONOCHROME1, INVERSE is the
    same inversion that the photometric interpretation already asks for (PS3.3 C.8.11.6.1:
    DX pairs INVERSE with MONOCHROME1), not a second one."""
    shape = str(ds.get("PresentationLUTShape") or "").strip().upper()
    return photometric == "MONOCHROME1" or (photometric == "MONOCHROME2" and shape == "INVERSE")


def load_dicom(data: bytes, *, frame: int | None, window: WindowSpec, sha256: str,
               filename: str | None) -> Scan:
    """Decode DICOM ``data`` into a :class:`Scan` (see the module docstring for the order)."""
    ds = _read(data)
    if not any(kw in ds for kw in _PIXEL_KEYWORDS):
        raise _missing_pixels_error(ds)
    rows, cols, n_frames = _check_header(ds)
    ts = _transfer_syntax(ds)
    _check_decoder(ts)
    samples = _header_int(ds, "SamplesPerPixel", "(0028,0002)") if "SamplesPerPixel" in ds else 1
    if samples not in (1, 3):
        raise ScanError(f"The DICOM header has an invalid (0028,0002) Samples per Pixel "
                        f"({samples}).", code="corrupt_header")
    notes: list[str] = []
    padding = _check_native_length(ds, ts, rows, cols, n_frames)
    if padding:
        notes.append(padding)

    index = n_frames // 2 if frame is None else frame
    if not 0 <= index < n_frames:
        raise ScanError(f"Frame {frame} does not exist: this file has {n_frames} frame(s) "
                        f"(0 to {n_frames - 1}).", code="bad_frame")
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).strip().upper()
    keep_volume = n_frames > 1 and n_frames * rows * cols * samples <= VOLUME_MAX_VOXELS

    raw = _decode(ds, None if keep_volume or n_frames == 1 else index)
    if raw.dtype == bool:
        raw = raw.astype(np.uint8)
    _check_decoded_shape(raw, rows, cols, n_frames if keep_volume else 1, samples)
    for keyword in _PIXEL_KEYWORDS:  # decoded now: free the encoded copy (memory per upload)
        if keyword in ds:
            del ds[keyword]
    original_range = finite_range(raw)
    original_dtype = str(raw.dtype)
    is_color = photometric == "PALETTE COLOR" or (raw.ndim >= 3 and raw.shape[-1] == 3
                                                 and samples == 3)

    display: Display
    if is_color:
        if photometric == "PALETTE COLOR":
            try:
                raw = apply_color_lut(raw, ds)
            except (ValueError, KeyError, AttributeError, IndexError) as err:
                raise ScanError("The palette colour lookup table in this DICOM file is "
                                "damaged.", code="corrupt_pixels") from err
            bits = 16 if raw.dtype.itemsize > 1 else 8
        else:
            bits = int(ds.get("BitsStored") or raw.dtype.itemsize * 8)
        top = float(2 ** bits - 1)
        display = Display(values=raw.astype(np.float32), frame_index=index,
                          has_volume=keep_volume,
                          default=(top / 2, top, f"{bits}-bit range"))
    else:
        try:
            values = np.empty(raw.shape, np.float32)
            if keep_volume and ("PerFrameFunctionalGroupsSequence" in ds):
                for i in range(n_frames):
                    _modality_into(values[i], raw[i], _frame_view(ds, i))
            else:
                _modality_into(values, raw, _frame_view(ds, index))
        except (ValueError, KeyError, AttributeError, IndexError, TypeError) as err:
            raise ScanError("The modality lookup table (rescale) in this DICOM file is "
                            "invalid.", code="corrupt_pixels") from err
        raw = None
        values, replaced = finite_values(values)
        notes.extend(replaced)
        display = Display(values=values, frame_index=index, has_volume=keep_volume,
                          invert=_inverted(ds, photometric), voi=_voi_view(ds, ts),
                          file_window=_file_window(ds, index),
                          default=constant_window(values),
                          file_windows=_file_windows(ds, index))
    del raw
    pixels, volume, win, source = render(display, window)
    spacing = _spacing(ds)
    metadata = dicom_summary(ds, transfer_syntax=ts.name)
    metadata["Size"] = f"{rows} × {cols}"
    metadata["Frames"] = f"{n_frames} (showing {index})" if n_frames > 1 else "1"
    metadata["Pixel spacing"] = format_spacing(spacing)
    metadata["Window"] = format_window(win, source)
    modality = str(ds.get("Modality") or "").strip() or None
    body_part = str(ds.get("BodyPartExamined") or "").strip() or None
    return Scan(pixels=pixels, is_color=is_color, n_frames=n_frames, frame_index=index,
                volume=volume, source_format="dicom", original_dtype=original_dtype,
                original_range=original_range, pixel_spacing=spacing, modality=modality,
                body_part=body_part, window=win, window_source=source, metadata=metadata,
                sha256=sha256, filename=filename, _display=display, warnings=tuple(notes))
