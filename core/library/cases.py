"""The case library: de-identified images with confirmed labels, stored once per content.

A case is the displayed image as the app renders it (``Scan.pixels``) written as a grey PNG,
8-bit when the source had 8-bit values (PNG / JPEG slices: lossless) and 16-bit otherwise
(DICOM after its window: 65,536 levels, well below the [0, 1] float's display error), or an
8-bit RGB PNG for colour images. No DICOM header is kept; the row holds only modality, body
part, label, source and a PHI-masked path (``core.db.cases``).

Duplicates are found by the hash of the stored pixel array (dtype, shape, bytes), so the same
image imported from a PNG and from a re-saved copy is one case.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
from sqlalchemy.orm import Session

from core.db import cases as rows
from core.db.cases import (count_cases, get_case, label_counts, list_cases, set_case_label,
                           source_counts)
from core.db.rows import CaseView
from core.imaging.export import thumbnail_png
from core.imaging.scan import Scan
from core.library.store import PixelStore, StoreError, default_store, key_for

__all__ = ["AddResult", "add_scan", "add_pixels", "case_image", "pixel_sha256", "encode_png",
           "decode_png", "case_pixels", "case_png", "remove_case", "list_cases", "count_cases",
           "label_counts", "source_counts", "get_case", "set_case_label", "CaseView",
           "UPLOAD_SOURCE"]

UPLOAD_SOURCE = "upload"
_EIGHT_BIT = ("uint8", "int8", "bool")


@dataclass(frozen=True)
class AddResult:
    case: CaseView
    created: bool          # False: the same pixels were already in the library


def case_image(scan: Scan) -> np.ndarray:
    """The pixels a case stores for ``scan``: uint8 (8-bit sources, colour) or uint16."""
    px = np.asarray(scan.pixels, np.float32)
    if scan.is_color or px.ndim == 3 or scan.original_dtype in _EIGHT_BIT:
        return np.rint(np.clip(px, 0, 1) * 255).astype(np.uint8)
    return np.rint(np.clip(px, 0, 1) * 65535).astype(np.uint16)


def pixel_sha256(image: np.ndarray) -> str:
    """Content hash of a stored pixel array: its dtype, shape and bytes."""
    arr = np.ascontiguousarray(image)
    h = hashlib.sha256(f"{arr.dtype.str}|{'x'.join(map(str, arr.shape))}|".encode())
    h.update(arr.tobytes())
    return h.hexdigest()


def encode_png(image: np.ndarray) -> bytes:
    """Lossless PNG bytes of a uint8 / uint16 grey or uint8 RGB array (no metadata chunks)."""
    import cv2

    img = np.ascontiguousarray(image)
    if img.ndim == 3:
        img = cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(".png", img)
    if not ok:  # pragma: no cover - only for invalid shapes
        raise ValueError(f"Cannot encode an image of shape {img.shape} as PNG.")
    return buf.tobytes()


def decode_png(data: bytes) -> np.ndarray:
    """The stored array back (uint8 / uint16 grey, or uint8 RGB)."""
    import cv2

    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise StoreError("A stored case image is damaged (not a readable PNG).")
    if img.ndim == 3:
        img = cv2.cvtColor(img[..., :3], cv2.COLOR_BGR2RGB)
    return img


def _clean_tag(value: str | None, limit: int) -> str | None:
    text = " ".join(str(value or "").split())[:limit]
    return text or None


def add_pixels(session: Session, image: np.ndarray, *, source: str,
               label: str | None = None, label_source: str | None = None,
               modality: str | None = None, body_part: str | None = None,
               source_path: str | None = None, added_by: int | None = None,
               store: PixelStore | None = None) -> AddResult:
    """Store ``image`` (from :func:`case_image`) once: an existing case with the same pixels is
    returned unchanged (``created`` False). Pixels are written before the row, so a crash
    leaves at most an unreferenced file, never a row without its image."""
    image = np.asarray(image)
    if image.dtype not in (np.uint8, np.uint16) or image.ndim not in (2, 3):
        raise ValueError(f"A case image is a uint8/uint16 H×W (or H×W×3) array, got "
                         f"{image.dtype} {image.shape}.")
    sha = pixel_sha256(image)
    existing = rows.case_by_sha(session, sha)
    if existing is not None:
        return AddResult(existing, False)
    store = store or default_store()
    key = key_for(sha)
    store.put(key, encode_png(image))
    scale = 65535.0 if image.dtype == np.uint16 else 255.0
    view = rows.insert_case(
        session, sha256=sha, storage_key=key, width=image.shape[1], height=image.shape[0],
        bit_depth=16 if image.dtype == np.uint16 else 8, source=source, label=label,
        label_source=label_source, modality=_clean_tag(modality, 16),
        body_part=_clean_tag(body_part, 64), source_path=source_path, added_by=added_by,
        thumbnail=thumbnail_png(image.astype(np.float32) / scale))
    return AddResult(view, True)


def add_scan(session: Session, scan: Scan, *, label: str | None = None,
             source: str = UPLOAD_SOURCE, label_source: str | None = None,
             source_path: str | None = None, added_by: int | None = None,
             store: PixelStore | None = None, modality: str | None = None,
             body_part: str | None = None) -> AddResult:
    """Add a loaded scan's displayed pixels with its modality and body part, nothing else of
    its header (``modality`` / ``body_part`` fill in where the file has none, e.g. a PNG).
    ``source_path`` must already be PHI-masked (uploads keep none)."""
    return add_pixels(session, case_image(scan), source=source, label=label,
                      label_source=label_source or ("admin" if source == UPLOAD_SOURCE
                                                    else "import"),
                      modality=scan.modality or modality,
                      body_part=scan.body_part or body_part,
                      source_path=source_path, added_by=added_by, store=store)


def case_png(session: Session, case_id: int, store: PixelStore | None = None) -> bytes:
    case = get_case(session, case_id)
    return (store or default_store()).get(case.storage_key)


def case_pixels(session: Session, case_id: int, store: PixelStore | None = None) -> np.ndarray:
    """A case's image as float32 in [0, 1] (H×W, or H×W×3 for colour): what the models take."""
    img = decode_png(case_png(session, case_id, store))
    scale = 65535.0 if img.dtype == np.uint16 else 255.0
    return img.astype(np.float32) / scale


def remove_case(session: Session, case_id: int, *, user_id: int | None,
                store: PixelStore | None = None) -> CaseView:
    """Delete a case: its row and embeddings (audited), then its pixels."""
    view = rows.delete_case(session, case_id, user_id=user_id)
    session.flush()
    # a failure raises, and the caller's transaction rolls the row back: nothing half-removed
    (store or default_store()).delete(view.storage_key)
    return view
