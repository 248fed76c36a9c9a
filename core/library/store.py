"""Where case pixels live: one small interface, a local directory by default.

A store keeps PNG bytes under a key (``ab/abcdef….png``, derived from the content hash, so the
same image is written once and keys never collide). The database holds only the rows
(``core.db.cases``). Point ``MEDSCAN_LIBRARY_DIR`` at a shared volume (NFS, SMB, a mounted
bucket) and every app server sees one library; writes go to a temporary file in the same
folder and are renamed into place, so a reader on another server never sees half a PNG.
"""
from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Protocol

from core import config
from core.errors import MedScanError

__all__ = ["PixelStore", "LocalDirStore", "default_store", "library_dir", "key_for",
           "StoreError"]

_KEY = re.compile(r"[0-9a-f]{2}/[0-9a-f]{64}\.png")


class StoreError(MedScanError):
    """A case image could not be written, read or removed."""


class PixelStore(Protocol):
    def put(self, key: str, data: bytes) -> None: ...
    def get(self, key: str) -> bytes: ...
    def exists(self, key: str) -> bool: ...
    def delete(self, key: str) -> None: ...
    def describe(self) -> str: ...


def key_for(sha256: str) -> str:
    """The storage key of an image with content hash ``sha256``."""
    key = f"{sha256[:2]}/{sha256}.png"
    if not _KEY.fullmatch(key):
        raise ValueError(f"not a SHA-256 hex digest: {sha256!r}")
    return key


def library_dir() -> Path:
    """``MEDSCAN_LIBRARY_DIR``, else ``<data dir>/library``."""
    value = os.environ.get("MEDSCAN_LIBRARY_DIR", "").strip()
    return Path(value).expanduser() if value else config.data_dir() / "library"


class LocalDirStore:
    """PNG files in a folder tree (local disk or a shared volume)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        if not _KEY.fullmatch(key):   # never a path outside the store
            raise StoreError(f"Invalid case image key {key!r}.")
        return self.root / key

    def put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        if path.exists():
            return   # content-addressed: the same key holds the same bytes
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".png")
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        except OSError as err:
            raise StoreError(f"Could not write the case image to {self.describe()}: "
                             f"{err.strerror or err}.") from err

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise StoreError(f"The case image {key} is missing from {self.describe()}.") from None
        except OSError as err:
            raise StoreError(f"Could not read the case image {key}: {err.strerror or err}.") \
                from err

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        try:
            self._path(key).unlink(missing_ok=True)
        except OSError as err:
            raise StoreError(f"Could not remove the case image {key}: {err.strerror or err}.") \
                from err

    def describe(self) -> str:
        return f"the case library folder {config.portable(str(self.root))}"


def default_store() -> LocalDirStore:
    return LocalDirStore(library_dir())
