"""Format detection by content (magic bytes), never by file extension."""
from __future__ import annotations

import struct

from core.errors import ScanError

__all__ = ["sniff", "SUPPORTED"]

SUPPORTED = ("dicom", "png", "jpeg", "tiff")

# Recognised but unsupported formats: (magic, offset, human name).
_OTHER = (
    (b"%PDF", 0, "a PDF document"),
    (b"GIF87a", 0, "a GIF image"),
    (b"GIF89a", 0, "a GIF image"),
    (b"BM", 0, "a BMP image"),
    (b"PK\x03\x04", 0, "a zip archive: open the scans inside it one at a time (the app's "
                        "upload and `python -m core inspect` accept a .zip of scans)"),
    (b"\x1f\x8b", 0, "a gzip archive"),
    (b"RIFF", 0, "a RIFF file (WebP/AVI)"),
    (b"\x00\x00\x00\x0cjP  ", 0, "a JPEG 2000 image (not inside DICOM)"),
    (b"\xff\x4f\xff\x51", 0, "a raw JPEG 2000 codestream"),
    (b"n+1\x00", 344, "a NIfTI volume"),
    (b"ni1\x00", 344, "a NIfTI volume"),
    (b"\x89HDF", 0, "an HDF5 file"),
    (b"{\\rtf", 0, "an RTF document"),
    (b"\xd0\xcf\x11\xe0", 0, "a Microsoft Office document"),
)

_VRS = {b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FL", b"FD", b"IS", b"LO", b"LT",
        b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"PN", b"SH", b"SL", b"SQ", b"SS", b"ST",
        b"SV", b"TM", b"UC", b"UI", b"UL", b"UN", b"UR", b"US", b"UT", b"UV"}


def _looks_like_headerless_dicom(data: bytes) -> bool:
    """A DICOM stream without the 128-byte preamble and "DICM": it starts with a group 0002
    (file meta) or 0008 (identifying) element, explicit or implicit VR, little or big endian."""
    if len(data) < 8:
        return False
    for endian in "<>":
        group, _elem = struct.unpack(endian + "HH", data[:4])
        if group not in (0x0002, 0x0008):
            continue
        if data[4:6] in _VRS:
            return True
        (length,) = struct.unpack(endian + "I", data[4:8])
        if length < 1024 and length <= len(data):
            return True
    return False


def sniff(data: bytes) -> str:
    """Return ``"dicom"``, ``"png"``, ``"jpeg"`` or ``"tiff"``; else raise ``ScanError``
    (``unknown_format``) naming what the bytes look like."""
    if data[128:132] == b"DICM" or data[:4] == b"DICM":
        return "dicom"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if data[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if data[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "tiff"
    if _looks_like_headerless_dicom(data):
        return "dicom"
    for magic, offset, name in _OTHER:
        if data[offset:offset + len(magic)] == magic:
            if magic.startswith(b"PK"):
                raise ScanError(f"This file is {name}.", code="unknown_format")
            raise ScanError(f"This file is {name}, not a scan. MedScan reads DICOM, PNG, JPEG "
                            "and TIFF.", code="unknown_format")
    if len(data) < 132 and (not data.strip(b"\x00") or b"DICM".startswith(data[128:]) and
                            len(data) > 128):
        raise ScanError("The file is truncated: it ends inside the DICOM preamble.",
                        code="truncated")
    if data[:8] == b"\x89PNG\r\n\x1a\n"[:len(data)] or data[:3] == b"\xff\xd8\xff"[:len(data)]:
        raise ScanError("The file is truncated: it ends before the image header.",
                        code="truncated")
    head = data[:512]
    if head and all(32 <= b < 127 or b in (9, 10, 13) for b in head):
        kind = "a text file"
    else:
        kind = "not a recognised image format"
    raise ScanError(f"This file is {kind}. MedScan reads DICOM (with or without extension), "
                    "PNG, JPEG and TIFF.", code="unknown_format")
