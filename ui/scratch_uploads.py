"""Uploads that survive a page reload: each new upload is also kept, de-identified, in the
user's scratch store (:mod:`core.scratch`: a 16-bit PNG of the displayed pixels under the masked
name, never the uploaded file), and a new browser session of the same login gets them back in
``st.session_state["uploads"]`` (the list :mod:`ui.scan_ui` keeps)."""
from __future__ import annotations

import logging

import streamlit as st

__all__ = ["keep_upload", "restore_once"]

_RESTORED = "_scratch_restored"
_log = logging.getLogger("medscan.scratch")


def keep_upload(sha: str, name: str, data: bytes) -> None:
    """Keep a de-identified copy of every readable scan of a new upload (ui.scan_ui calls it)."""
    from core import scratch
    from core.errors import ScanError
    from ui import upload_results

    user = st.session_state.get("user")
    if not user:
        return
    try:
        items = upload_results.read_upload(sha, name, _data=data)
    except ScanError:
        return                                    # the page shows why; nothing to keep
    good = [item for item in items if item.error is None]
    for i, item in enumerate(good[:scratch.MAX_ITEMS]):
        label = name if len(good) == 1 else f"{name} · {i + 1} of {len(good)}"
        try:
            scratch.save_scan(user["id"], label, item.scan.pixels)
        except (OSError, ValueError) as err:      # a full disk must not break the upload
            _log.warning("scratch copy not kept: %s", err)


def restore_once(user: dict) -> None:
    """In a browser session that resumed this login from its cookie, list the kept uploads
    again (newest selected)."""
    from core import scratch
    from ui.auth import RESUMED_KEY

    if st.session_state.get(_RESTORED):
        return
    st.session_state[_RESTORED] = True
    # Only a tab that took over an existing login session from its cookie (a reload, a new tab)
    # gets the uploads back; a fresh login starts empty.
    if not st.session_state.get(RESUMED_KEY) or st.session_state.get("uploads"):
        return
    try:
        kept = scratch.restore(user["id"])
    except OSError as err:
        _log.warning("scratch uploads not restored: %s", err)
        return
    if not kept:
        return
    st.session_state["uploads"] = {sha: (name, data) for sha, name, data in kept}
    st.session_state["selected_scan"] = f"{kept[-1][0]}:0"
