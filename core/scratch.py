"""Per-user scratch store: the scans a user uploaded in their login session, kept on the server
so they are still listed after a page reload.

Never PHI: what is stored is a de-identified copy, not the uploaded file. Each scan is kept as
a PNG of its displayed pixels (16-bit grey, or 16-bit RGB for colour; no header, no metadata,
no DICOM tags, one frame) under its PHI-masked display name, in
``$MEDSCAN_DATA_DIR/scratch/<user_id>/`` (folder 0700, files 0600). Limits: the newest
``MAX_ITEMS`` per user, none older than ``RETENTION`` (a login session's absolute limit), and
:func:`clear` on log out. The trade-off: a restored DICOM comes back as that PNG (its display
window baked in, no header, other frames gone) and is a new scan by hash, so ratings of the
original upload stay with the original; re-upload the file for windowing or other frames.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from datetime import timedelta
from pathlib import Path

import numpy as np

from core import config

__all__ = ["MAX_ITEMS", "RETENTION", "user_dir", "display_png", "save_scan", "restore",
           "clear", "prune"]

MAX_ITEMS = 12                       # as many as a browser session keeps (ui.scan_ui)
RETENTION = timedelta(hours=12)      # core.db.sessions.MAX_AGE: no file outlives its session
_NAME_MAX = 120


def user_dir(user_id: int) -> Path:
    return config.data_dir() / "scratch" / str(int(user_id))


def display_png(pixels: np.ndarray) -> bytes:
    """16-bit PNG of float pixels in [0, 1] (H×W grey or H×W×3 RGB); nothing else."""
    import cv2

    arr = np.asarray(pixels, dtype=np.float32)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] != 3):
        raise ValueError(f"expected H×W or H×W×3 pixels, got shape {arr.shape}")
    img = np.round(np.clip(np.nan_to_num(arr, nan=0.0), 0.0, 1.0) * 65535).astype(np.uint16)
    if img.ndim == 3:
        img = img[..., ::-1]         # OpenCV writes BGR
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(img))
    if not ok:
        raise ValueError("could not encode the scan as PNG")
    return buf.tobytes()


def _write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


def prune(user_id: int, *, now: float | None = None) -> None:
    """Drop this user's items beyond ``MAX_ITEMS`` (oldest first) or older than ``RETENTION``."""
    folder = user_dir(user_id)
    if not folder.is_dir():
        return
    now = time.time() if now is None else now
    items = sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
    for i, meta in enumerate(items):
        if i >= MAX_ITEMS or now - meta.stat().st_mtime > RETENTION.total_seconds():
            meta.with_suffix(".png").unlink(missing_ok=True)
            meta.unlink(missing_ok=True)
    for stray in folder.glob("*.png"):          # a PNG whose metadata is gone
        if not stray.with_suffix(".json").exists():
            stray.unlink(missing_ok=True)


def save_scan(user_id: int, name: str, pixels: np.ndarray) -> str:
    """Keep a de-identified PNG of ``pixels`` under the (already PHI-masked) ``name``; returns
    the PNG's SHA-256. Saving the same pixels again only refreshes their age."""
    png = display_png(pixels)
    sha = hashlib.sha256(png).hexdigest()
    folder = user_dir(user_id)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(folder, 0o700)
    png_path = folder / f"{sha}.png"
    if not png_path.exists():
        _write(png_path, png)
    _write(folder / f"{sha}.json", json.dumps({"name": str(name)[:_NAME_MAX]}).encode())
    prune(user_id)
    return sha


def restore(user_id: int) -> list[tuple[str, str, bytes]]:
    """This user's kept scans as ``(sha256, name, png_bytes)``, oldest first."""
    prune(user_id)
    folder = user_dir(user_id)
    if not folder.is_dir():
        return []
    out = []
    for meta in sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime):
        png_path = meta.with_suffix(".png")
        try:
            name = str(json.loads(meta.read_text())["name"])[:_NAME_MAX]
            data = png_path.read_bytes()
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if hashlib.sha256(data).hexdigest() == meta.stem:
            out.append((meta.stem, name, data))
    return out


def clear(user_id: int) -> None:
    """Forget every kept scan of this user (log out)."""
    shutil.rmtree(user_dir(user_id), ignore_errors=True)
