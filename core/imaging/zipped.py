"""Uploads: one file, or a .zip of files (e.g. a DICOM series) → one result per member."""
from __future__ import annotations

import io
import re
import zipfile
from typing import NamedTuple

from core.errors import ScanError
from core.imaging.load import load_scan
from core.imaging.phi import mask_filename, mask_upload_name
from core.imaging.scan import Scan

__all__ = ["Upload", "load_uploads", "ZIP_MAX_MEMBERS", "ZIP_MAX_TOTAL_BYTES"]

#: Zip-bomb limits: at most this many files, and this many uncompressed bytes in total
#: (counted while reading, not trusted from the zip directory).
ZIP_MAX_MEMBERS = 1000
ZIP_MAX_TOTAL_BYTES = 1024 ** 3


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
    results: list[Upload] = []
    total = 0
    for info in sorted(infos, key=lambda i: _natural_key(i.filename)):
        budget = ZIP_MAX_TOTAL_BYTES - total
        try:
            with archive.open(info) as member:
                content = member.read(budget + 1)
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
        try:
            scan = load_scan(content, shown, **kwargs)  # type: ignore[arg-type]
        except ScanError as err:
            if err.code == "no_pixel_data" and "DICOMDIR" in str(err):  # by content
                continue
            results.append(Upload(shown, err))
            continue
        results.append(Upload(shown, scan))
    if not results:
        raise ScanError(f"The zip file {name} contains no scans.", code="zip_error")
    return results
