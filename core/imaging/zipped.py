"""Uploads: one file, or a .zip of files (e.g. a DICOM series) → one result per member."""
from __future__ import annotations

import io
import re
import zipfile
import zlib
from typing import NamedTuple

from core.config import max_pixels
from core.errors import ScanError
from core.imaging.load import load_scan
from core.imaging.phi import mask_filename, mask_upload_name
from core.imaging.scan import Scan

__all__ = ["Upload", "load_uploads", "decoded_pixels", "ZIP_MAX_MEMBERS", "ZIP_MAX_TOTAL_BYTES",
           "ZIP_MAX_MEMBER_BYTES", "ZIP_MAX_RATIO", "ZIP_RATIO_FROM_BYTES"]

#: Zip-bomb limits, checked from the zip directory before anything is inflated: at most this
#: many files, this many uncompressed bytes in total and per file, and members larger than
#: ZIP_RATIO_FROM_BYTES may not be compressed more than ZIP_MAX_RATIO : 1 (real scans
#: compress 2–10 : 1; a zip bomb 1000 : 1). Python's zipfile never returns more than a
#: member's declared size (and fails its CRC when the data is longer), so the declared sizes
#: are a hard bound on what reading can allocate.
ZIP_MAX_MEMBERS = 1000
ZIP_MAX_TOTAL_BYTES = 1024 ** 3
ZIP_MAX_MEMBER_BYTES = 512 * 1024 ** 2
ZIP_MAX_RATIO = 100
ZIP_RATIO_FROM_BYTES = 16 * 1024 ** 2

# Zip compression methods Python cannot unpack (APPNOTE.TXT 4.4.5), named in the error.
_METHODS = {1: "Shrink", 2: "Reduce", 3: "Reduce", 4: "Reduce", 5: "Reduce", 6: "Implode",
            9: "Deflate64", 10: "PKWARE Implode", 18: "IBM TERSE", 19: "IBM LZ77",
            93: "Zstandard", 94: "MP3", 95: "XZ", 96: "JPEG", 97: "WavPack", 98: "PPMd",
            99: "AES encryption"}


def _check_declared(infos: list[zipfile.ZipInfo]) -> None:
    """Refuse a zip bomb from its directory alone: nothing is inflated yet."""
    total = sum(i.file_size for i in infos)
    if total > ZIP_MAX_TOTAL_BYTES:
        raise ScanError(f"The zip would expand to {total:,} bytes; MedScan accepts at most "
                        f"{ZIP_MAX_TOTAL_BYTES:,} bytes (1 GiB) of scans per zip.",
                        code="zip_error")
    for i in infos:
        if i.file_size > ZIP_MAX_MEMBER_BYTES:
            raise ScanError(f"A file in the zip would expand to {i.file_size:,} bytes; MedScan "
                            f"accepts at most {ZIP_MAX_MEMBER_BYTES:,} bytes (512 MiB) per "
                            "file.", code="zip_error")
        ratio = i.file_size / max(i.compress_size, 1)
        if i.file_size > ZIP_RATIO_FROM_BYTES and ratio > ZIP_MAX_RATIO:
            raise ScanError(f"The zip looks like a zip bomb: a file compressed to "
                            f"{i.compress_size:,} bytes would expand to {i.file_size:,} bytes "
                            f"({ratio:,.0f} : 1). MedScan refuses files over "
                            f"{ZIP_RATIO_FROM_BYTES // 1024 ** 2} MiB that are compressed more "
                            f"than {ZIP_MAX_RATIO} : 1.", code="zip_error")


def _extract(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    """One member's bytes (at most its declared size), or a ScanError saying why not."""
    if info.flag_bits & 0x1:
        raise ScanError("This file in the zip is encrypted (password-protected); MedScan "
                        "cannot open it. Unzip it with its password first.", code="zip_error")
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2,
                                  zipfile.ZIP_LZMA):
        method = _METHODS.get(info.compress_type, "an unknown method")
        raise ScanError(f"This file in the zip uses the compression method {method} (zip "
                        f"method {info.compress_type}), which MedScan cannot unpack. Re-create "
                        "the zip with standard (Deflate) compression.", code="zip_error")
    try:
        with archive.open(info) as member:
            content = member.read(info.file_size + 1)
    except NotImplementedError as err:
        raise ScanError(f"This file in the zip uses a compression method MedScan cannot "
                        f"unpack (zip method {info.compress_type}). Re-create the zip with "
                        "standard (Deflate) compression.", code="zip_error") from err
    except RuntimeError as err:  # zipfile: "encrypted, password required"
        raise ScanError("This file in the zip is encrypted (password-protected); MedScan "
                        "cannot open it.", code="zip_error") from err
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, zlib.error) as err:
        raise ScanError("This file in the zip is damaged and could not be extracted (its "
                        "data or checksum is wrong).", code="zip_error") from err
    if len(content) != info.file_size:
        raise ScanError("This file in the zip is damaged: its data is shorter or longer than "
                        "the zip's directory says.", code="zip_error")
    return content


class Upload(NamedTuple):
    """One uploaded file: ``result`` is a :class:`Scan` or the :class:`ScanError` it raised."""

    name: str
    result: Scan | ScanError

    @property
    def ok(self) -> bool:
        return isinstance(self.result, Scan)

    @property
    def scan(self) -> Scan | None:
        return self.result if isinstance(self.result, Scan) else None

    @property
    def error(self) -> ScanError | None:
        return self.result if isinstance(self.result, ScanError) else None


def _natural_key(name: str) -> list[object]:
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name)]


#: Members never tried as scans: documentation and viewer files shipped on PACS exports.
_DOC_SUFFIXES = (".txt", ".md", ".htm", ".html", ".xml", ".json", ".csv", ".nfo", ".ini",
                 ".inf", ".exe", ".dll", ".bat", ".sh", ".js", ".css")


def _skip(name: str) -> bool:
    """Folders, macOS/Windows junk, DICOMDIR index files and documentation are not scans."""
    base = name.rstrip("/").rsplit("/", 1)[-1]
    return (name.endswith("/") or name.startswith("__MACOSX/") or base.startswith(".")
            or base.upper() in ("DICOMDIR", "THUMBS.DB", "DESKTOP.INI")
            or base.lower().endswith(_DOC_SUFFIXES))


def decoded_pixels(scan: Scan) -> int:
    """Decoded values a scan keeps in memory: its displayed image plus its frame volume."""
    return int(scan.pixels.size + (scan.volume.size if scan.volume is not None else 0))


def _over_cap(shown: str, cap: int) -> ScanError:
    return ScanError(f"{shown} was not loaded: with the scans before it in this zip it would "
                     f"pass {cap:,} decoded pixels, the limit for one upload (MEDSCAN_MAX_PIXELS). "
                     f"Upload the rest of the series as another zip.", code="too_large")


def load_uploads(name: str, data: bytes, **kwargs: object) -> list[Upload]:
    """Load one uploaded file, or every scan inside a .zip (detected by content).

    Returns one :class:`Upload` per file, in natural name order; per-file failures are
    returned, not raised. Skipped silently: folders, ``__MACOSX``, hidden files, text and
    viewer files (``.txt``, ``.html``, ...), DICOMDIR (by name, or by content).
    Raises ``ScanError(code="zip_error")`` when the zip itself is damaged, exceeds
    :data:`ZIP_MAX_MEMBERS` / :data:`ZIP_MAX_TOTAL_BYTES`, or holds no candidate files.
    ``kwargs`` (``frame``, ``window``) are passed to :func:`load_scan`.
    """
    if not (data[:4] == b"PK\x03\x04" or (data[:4] == b"PK\x05\x06" and name.lower().endswith(".zip"))):
        try:
            return [Upload(name, load_scan(data, name, **kwargs))]  # type: ignore[arg-type]
        except ScanError as err:
            return [Upload(name, err)]
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = [i for i in archive.infolist() if not _skip(i.filename)]
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError) as err:
        raise ScanError(f"The zip file {name} is damaged and cannot be opened.",
                        code="zip_error") from err
    if len(infos) > ZIP_MAX_MEMBERS:
        raise ScanError(f"The zip holds {len(infos)} files; the limit is {ZIP_MAX_MEMBERS}.",
                        code="zip_error")
    if not infos:
        raise ScanError(f"The zip file {name} contains no scans.", code="zip_error")
    _check_declared(infos)
    results: list[Upload] = []
    total = 0
    kept_pixels, cap = 0, max_pixels()
    for info in sorted(infos, key=lambda i: _natural_key(i.filename)):
        try:
            content = _extract(archive, info)
        except ScanError as err:
            results.append(Upload(mask_filename(info.filename), err))
            continue
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError,
                RuntimeError):  # RuntimeError: encrypted member
            shown = mask_filename(info.filename)     # member names may hold PHI (phi.py)
            results.append(Upload(shown, ScanError(
                f"{shown} could not be extracted from the zip (damaged or encrypted).",
                code="zip_error")))
            continue
        total += len(content)
        if total > ZIP_MAX_TOTAL_BYTES:
            raise ScanError(f"The zip expands to more than {ZIP_MAX_TOTAL_BYTES:,} bytes.",
                            code="zip_error")
        shown = mask_upload_name(info.filename, content)   # PHI in member names (phi.py)
        if kept_pixels >= cap:       # one upload keeps at most MEDSCAN_MAX_PIXELS decoded pixels
            results.append(Upload(shown, _over_cap(shown, cap)))
            continue
        try:
            scan = load_scan(content, shown, **kwargs)  # type: ignore[arg-type]
        except ScanError as err:
            if err.code == "no_pixel_data" and "DICOMDIR" in str(err):  # by content
                continue
            results.append(Upload(shown, err))
            continue
        del content
        kept = decoded_pixels(scan)
        if kept_pixels + kept > cap:
            results.append(Upload(shown, _over_cap(shown, cap)))
            kept_pixels = cap
            continue
        kept_pixels += kept
        results.append(Upload(shown, scan))
    if not results:
        raise ScanError(f"The zip file {name} contains no scans.", code="zip_error")
    return results
