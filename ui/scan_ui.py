"""Upload, choose and window a scan: the widgets the Analyze and Super-resolution pages share.

Uploaded files are kept in this browser session (``st.session_state["uploads"]``: sha256 →
(name, bytes), the newest few), so a scan uploaded on one page can be picked on the other.
Decoding is cached by the bytes' hash (:mod:`ui.cached`).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import streamlit as st

from core.errors import ScanError
from ui import cached
from ui.images import sha256_hex

__all__ = ["UPLOAD_HELP", "Picked", "upload_ui", "pick_scan_ui", "scan_or_stop_ui", "all_scans_ui", "window_ui",
           "frame_ui"]

UPLOADS_KEY = "uploads"
MAX_KEPT_UPLOADS = 12
UPLOAD_HELP = ("PNG, JPEG, TIFF or DICOM (with or without a file extension; compressed and "
               "multi-frame included), or a .zip of a DICOM series. Several files at once are "
               "fine.")
FILE_DEFAULT = "File default"
MANUAL = "Manual"


@dataclass(frozen=True)
class Picked:
    """The scan chosen for display: ``key`` identifies it in caches (sha256 of the upload,
    plus the member index for zips and the frame for multi-frame files)."""

    scan: object            # core.imaging.Scan
    key: str
    upload_sha: str
    name: str
    data: bytes


def upload_ui(key: str = "scan") -> None:
    """The file uploader; new files are remembered for this browser session."""
    files = st.file_uploader("Upload scans", accept_multiple_files=True, key=key, help=UPLOAD_HELP)
    kept: dict = st.session_state.setdefault(UPLOADS_KEY, {})
    for f in files or []:
        data = f.getvalue()
        sha = sha256_hex(data)
        kept.pop(sha, None)
        kept[sha] = (f.name, data)          # newest last
    while len(kept) > MAX_KEPT_UPLOADS:
        kept.pop(next(iter(kept)))


def _entries() -> tuple[list[tuple[str, str, int, object]], list[tuple[str, str]]]:
    """All readable scans of every kept upload, newest upload first, and the errors."""
    scans, errors = [], []
    for sha, (name, data) in reversed(list(st.session_state.get(UPLOADS_KEY, {}).items())):
        try:
            results = cached.read_upload(sha, name, _data=data)
        except ScanError as err:
            errors.append((name, str(err)))
            continue
        for i, item in enumerate(results):
            if item.error is not None:
                errors.append((item.name, str(item.error)))
            else:
                scans.append((sha, item.name, i, item.scan))
    return scans, errors


def pick_scan_ui(key: str) -> Picked | None:
    """Errors for unreadable files, a selector when there is more than one scan; the choice."""
    scans, errors = _entries()
    for name, message in errors:
        st.error(f"**{name}**: {message}", icon=":material/error:")
    if not scans:
        return None
    labels = [f"{name}  ·  {scan.source_format.upper()}  ·  {scan.pixels.shape[1]}×"
              f"{scan.pixels.shape[0]}" for _, name, _, scan in scans]
    idx = 0
    if len(scans) > 1:
        idx = st.selectbox(f"Scan ({len(scans)} loaded)", range(len(scans)),
                           format_func=labels.__getitem__, key=key)
    sha, name, member, scan = scans[idx]
    data = st.session_state[UPLOADS_KEY][sha][1]
    return Picked(scan=scan, key=f"{sha}:{member}", upload_sha=sha, name=name, data=data)


def scan_or_stop_ui(pick_key: str, frame_key: str, empty_message: str) -> Picked:
    """A page's start: the uploader, the scan picker and the frame slider; with no readable
    scan, ``empty_message`` and the page stops."""
    upload_ui("scan")
    picked = pick_scan_ui(pick_key)
    if picked is None:
        st.info(empty_message, icon=":material/upload_file:")
        st.stop()
    return frame_ui(picked, frame_key)


def all_scans_ui(*, show_errors: bool = True) -> list[Picked]:
    """Every readable scan uploaded in this session (errors shown unless told not to)."""
    scans, errors = _entries()
    for name, message in errors if show_errors else []:
        st.error(f"**{name}**: {message}", icon=":material/error:")
    kept = st.session_state.get(UPLOADS_KEY, {})
    return [Picked(scan=scan, key=f"{sha}:{member}", upload_sha=sha, name=name,
                   data=kept[sha][1]) for sha, name, member, scan in scans]


def frame_ui(picked: Picked, key: str) -> Picked:
    """A frame slider for multi-frame files; returns the picked scan at that frame (decoded
    once per frame, cached by the upload's hash)."""
    scan = picked.scan
    if scan.n_frames <= 1 or picked.name != st.session_state[UPLOADS_KEY][picked.upload_sha][0]:
        return picked  # single frame, or a member of a zip (each member is one image)
    frame = st.slider(f"Frame (of {scan.n_frames})", 1, scan.n_frames, scan.frame_index + 1,
                      key=key) - 1
    if frame == scan.frame_index:
        return picked
    new = cached.load_frame(picked.upload_sha, picked.name, frame, _data=picked.data)
    return dataclasses.replace(picked, scan=new, key=f"{picked.key}:f{frame}")


def window_ui(scan, key: str):
    """Window preset selector plus manual centre/width; enabled only for DICOM (other formats
    have no stored values beyond the 8/16-bit range). Returns the scan to display."""
    from core.imaging import WINDOW_PRESETS, apply_window

    is_dicom = scan.source_format == "dicom" and not scan.is_color
    options = [FILE_DEFAULT, *WINDOW_PRESETS, MANUAL]
    help_text = ("CT presets are in Hounsfield units; on MR the values are signal "
                 "intensities, so use File default, min-max or Manual." if is_dicom else
                 "Windowing applies to DICOM only.")
    preset = st.selectbox("Window", options, key=f"{key}_preset", disabled=not is_dicom,
                          help=help_text)
    c2, c3 = st.columns(2)
    manual = is_dicom and preset == MANUAL
    centre0, width0 = scan.window or (0.5, 1.0)
    centre = c2.number_input("Centre", value=float(centre0), key=f"{key}_centre",
                             disabled=not manual, format="%.1f")
    width = c3.number_input("Width", value=float(width0), min_value=1e-3, key=f"{key}_width",
                            disabled=not manual, format="%.1f")
    if not is_dicom or preset == FILE_DEFAULT:
        return scan
    try:
        return apply_window(scan, (centre, width) if manual else preset)
    except ScanError as err:
        st.error(str(err))
        return scan
