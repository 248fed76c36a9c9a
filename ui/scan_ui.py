"""Upload, choose and window a scan: the widgets the Analyze and Super-resolution pages share.

Uploaded files are kept in this browser session (``st.session_state["uploads"]``: sha256 →
(name, bytes), the newest few, in upload order), so a scan uploaded on one page can be picked on
the other. Decoding is cached by the bytes' hash (:mod:`ui.upload_results`).

One scan is selected across the app (``st.session_state["selected_scan"]``: the scan's key,
``"<sha256>:<member>"``): a new upload selects the first file of its batch, the picker on either
page changes it, and each page's picker shows it. The frame of a multi-frame file belongs to its
scan (``st.session_state["scan_frames"]``). Pages put :func:`scan_header_ui` ("Scan: name ·
format · W×H") above their results, so results always sit under the name of their scan.
"""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

import streamlit as st

from core.errors import ScanError
from ui import upload_results
from ui.images import sha256_hex

__all__ = ["UPLOAD_HELP", "Picked", "upload_ui", "pick_scan_ui", "scan_or_stop_ui",
           "all_scans_ui", "window_ui", "frame_ui", "select_scan", "scan_header_ui", "scan_label",
           "markdown_literal", "SELECTED_KEY"]

UPLOADS_KEY = "uploads"
SELECTED_KEY = "selected_scan"      # the scan shown on every page: "<sha256>:<member>"
FRAMES_KEY = "scan_frames"          # scan key → chosen frame (0-based) of a multi-frame file
_SEEN_FILES = "_upload_file_ids"    # uploader file ids already kept (reruns add nothing)
MAX_KEPT_UPLOADS = 12
UPLOAD_HELP = ("PNG, JPEG, TIFF or DICOM (with or without a file extension; compressed and "
               "multi-frame included), or a .zip of a DICOM series. Several files at once are "
               "fine.")
MANUAL = "Manual"
WINDOWS_KEY = "scan_windows"   # sha256 → (choice, centre, width): each scan's own window


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
    """The file uploader. Files new to this browser session are kept, and the first file of a
    new batch (in the order uploaded) becomes the selected scan on every page."""
    files = st.file_uploader("Upload scans", accept_multiple_files=True, key=key, help=UPLOAD_HELP)
    kept: dict = st.session_state.setdefault(UPLOADS_KEY, {})
    seen: set = st.session_state.setdefault(_SEEN_FILES, set())
    new: list[str] = []
    for f in files or []:
        if f.file_id in seen:
            continue                        # kept on the run it arrived; reruns change nothing
        seen.add(f.file_id)
        data = f.getvalue()
        sha = sha256_hex(data)
        kept.pop(sha, None)
        from core.imaging.phi import mask_upload_name  # names may hold PHI: masked on entry
        kept[sha] = (mask_upload_name(f.name, data), data)  # newest last
        new.append(sha)
        # Session-survival hook (ui.scratch_uploads, owned by the accounts/sessions work): a
        # de-identified PNG copy is kept so the upload is listed again after a reload.
        from ui.scratch_uploads import keep_upload
        keep_upload(sha, *kept[sha])
    while len(kept) > MAX_KEPT_UPLOADS:
        kept.pop(next(iter(kept)))
    first_new = next((sha for sha in new if sha in kept), None)
    if first_new is not None:
        select_scan(f"{first_new}:0")


def select_scan(key: str) -> None:
    """Make the scan ``key`` (``"<sha256>:<member>"``) the one every page shows."""
    st.session_state[SELECTED_KEY] = key


def _on_pick(widget_key: str) -> None:
    select_scan(st.session_state[widget_key])


def _selected(keys: list[str]) -> str:
    """The selected scan among ``keys`` (upload order); when it is gone, another scan of the same
    upload (a zip whose first member is unreadable), else the newest upload's first scan."""
    chosen = st.session_state.get(SELECTED_KEY)
    if chosen in keys:
        return chosen
    sha = str(chosen or "").split(":")[0]
    same = [k for k in keys if k.split(":")[0] == sha]
    newest = keys[-1].split(":")[0]
    return same[0] if same else next(k for k in keys if k.split(":")[0] == newest)


def _entries() -> tuple[list[tuple[str, str, int, object]], list[tuple[str, str]]]:
    """All readable scans of every kept upload in upload order, and the errors."""
    scans, errors = [], []
    for sha, (name, data) in list(st.session_state.get(UPLOADS_KEY, {}).items()):
        try:
            results = upload_results.read_upload(sha, name, _data=data)
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
    """Errors for unreadable files, a selector when there is more than one scan (showing the
    app-wide selection; choosing here changes it on every page); the selected scan."""
    scans, errors = _entries()
    for name, message in errors:
        st.error(f"**{name}**: {message}", icon=":material/error:")
    if not scans:
        return None
    by_key = {f"{sha}:{member}": (sha, name, member, scan) for sha, name, member, scan in scans}
    chosen = _selected(list(by_key))
    select_scan(chosen)
    if len(scans) > 1:
        labels = {k: scan_label(name, scan) for k, (_, name, _, scan) in by_key.items()}
        st.session_state[key] = chosen      # the picker shows the selection, whichever page set it
        st.selectbox(f"Scan ({len(scans)} uploaded, newest last)", list(by_key),
                     format_func=labels.__getitem__, key=key, on_change=_on_pick, args=(key,),
                     help="Every scan you uploaded on Analyze or Super-resolution and still "
                          "kept; the uploader above lists only this page's files. The scan "
                          "chosen here is the one shown on both pages.")
    sha, name, member, scan = by_key[chosen]
    data = st.session_state[UPLOADS_KEY][sha][1]
    return Picked(scan=scan, key=chosen, upload_sha=sha, name=name, data=data)


def scan_label(name: str, scan) -> str:
    """``name · FORMAT · W×H``: how a scan is named in the picker, headers and rating titles."""
    h, w = scan.pixels.shape[:2]
    return f"{name}  ·  {scan.source_format.upper()}  ·  {w}×{h}"


def markdown_literal(text: str) -> str:
    """``text`` shown literally in Markdown (file names may hold * _ [ ] $ …)."""
    return re.sub(r"([\\`*_{}\[\]()<>#+!|~$-])", r"\\\1", text)


def scan_header_ui(picked: Picked) -> None:
    """"Scan: name · format · W×H" (and the frame) above a page's results: what follows
    belongs to this scan."""
    scan = picked.scan
    text = scan_label(picked.name, scan)
    if scan.n_frames > 1:
        text += f"  ·  frame {scan.frame_index + 1} of {scan.n_frames}"
    with st.container(key="scan_header"):
        st.markdown(f"**Scan:** {markdown_literal(text)}")


def scan_or_stop_ui(pick_key: str, frame_key: str, empty_message: str) -> Picked:
    """A page's start: the uploader, the scan picker, the frame slider and the scan's header;
    with no readable scan, ``empty_message`` and the page stops."""
    upload_ui("scan")
    picked = pick_scan_ui(pick_key)
    if picked is None:
        st.info(empty_message, icon=":material/upload_file:")
        st.stop()
    picked = frame_ui(picked, frame_key)
    scan_header_ui(picked)
    return picked


def all_scans_ui(*, show_errors: bool = True) -> list[Picked]:
    """Every readable scan uploaded in this session (errors shown unless told not to)."""
    scans, errors = _entries()
    for name, message in errors if show_errors else []:
        st.error(f"**{name}**: {message}", icon=":material/error:")
    kept = st.session_state.get(UPLOADS_KEY, {})
    return [Picked(scan=scan, key=f"{sha}:{member}", upload_sha=sha, name=name,
                   data=kept[sha][1]) for sha, name, member, scan in scans]


def _on_frame(widget_key: str, scan_key: str) -> None:
    st.session_state.setdefault(FRAMES_KEY, {})[scan_key] = st.session_state[widget_key] - 1


def frame_ui(picked: Picked, key: str) -> Picked:
    """A frame slider for multi-frame files; returns the picked scan at that frame (decoded
    once per frame, cached by the upload's hash). The frame belongs to the scan: another scan
    starts at its own default frame, and coming back finds the frame chosen before."""
    scan = picked.scan
    if scan.n_frames <= 1 or picked.name != st.session_state[UPLOADS_KEY][picked.upload_sha][0]:
        return picked  # single frame, or a member of a zip (each member is one image)
    frames: dict = st.session_state.setdefault(FRAMES_KEY, {})
    st.session_state[key] = frames.get(picked.key, scan.frame_index) + 1
    frame = st.slider(f"Frame (of {scan.n_frames})", 1, scan.n_frames, key=key,
                      on_change=_on_frame, args=(key, picked.key)) - 1
    if frame == scan.frame_index:
        return picked
    new = upload_results.load_frame(picked.upload_sha, picked.name, frame, _data=picked.data)
    return dataclasses.replace(picked, scan=new, key=f"{picked.key}:f{frame}")


def window_ui(scan, key: str):
    """The window of ``scan``: a selector of the windows that make sense for it
    (:func:`core.imaging.windowing.window_options`: the file's own windows, CT presets on CT
    only, min–max and percentiles; plus Manual) and centre / width fields that always show the
    window in force. The window belongs to the scan: widget keys include its SHA-256, so nothing
    carries over to another scan, and coming back to a scan (also from another page) restores
    its window (``st.session_state["scan_windows"]``). Returns the scan to display."""
    from core.imaging.windowing import MIN_WIDTH, apply_window, window_options

    options = {o.label: o for o in window_options(scan)}
    adjustable = scan.source_format == "dicom" and not scan.is_color
    labels = [*options, MANUAL] if adjustable else list(options)
    base = f"{key}_{scan.sha256[:16]}"
    k_choice, k_centre, k_width = f"{base}_preset", f"{base}_centre", f"{base}_width"
    saved: dict = st.session_state.setdefault(WINDOWS_KEY, {})
    if k_choice not in st.session_state and saved.get(scan.sha256, (None,))[0] in labels:
        choice0, centre0, width0 = saved[scan.sha256]   # back to this scan: its own window
        st.session_state[k_choice] = choice0
        if choice0 == MANUAL:
            st.session_state[k_centre], st.session_state[k_width] = centre0, width0

    def rendered(window):
        """``apply_window(scan, window)``, remembered for the last scan, frame and window
        shown (one per session), so a rerun for another widget does not re-window a whole
        volume again."""
        memo_key, token = "_window_shown", (base, scan.frame_index, window)
        memo = st.session_state.get(memo_key)
        if memo is None or memo[0] != token:
            memo = st.session_state[memo_key] = (token, apply_window(scan, window))
        return memo[1]

    def shown_value(value, low=None):
        """A window value the fields can show: finite, and not below the width's minimum."""
        if value is None or not float(value) == float(value) or abs(float(value)) == float("inf"):
            return None
        return max(float(value), low) if low is not None else float(value)

    # One format and step per scan, from the spread of its values (the fields never raise,
    # whatever the window: a constant image's width is MIN_WIDTH).
    spread = max((o.width or 0.0 for o in options.values()), default=1.0)
    step = 1.0 if spread >= 200 else 0.01 if spread >= 2 else max(spread / 100, MIN_WIDTH)
    help_text = ("The windows offered for this scan: the file's own, the CT presets "
                 "(Hounsfield units, CT only), min–max and percentiles of its stored values, or "
                 "Manual (centre and width in the stored units after the rescale / modality "
                 "LUT)." if adjustable else "Windowing applies to greyscale DICOM only.")
    choice = st.selectbox("Window", labels, key=k_choice, disabled=not adjustable,
                          help=help_text)
    manual = choice == MANUAL
    shown = scan
    if not manual:
        option = options[choice]
        if not option.default:
            shown = rendered(option.spec)
        centre, width = shown.window if shown.window else (None, None)
        st.session_state[k_centre] = shown_value(centre)
        st.session_state[k_width] = shown_value(width, MIN_WIDTH)
    else:
        for k, v in ((k_centre, scan.window[0] if scan.window else None),
                     (k_width, scan.window[1] if scan.window else None)):
            if st.session_state.get(k) is None:
                st.session_state[k] = shown_value(v, MIN_WIDTH if k == k_width else None)
    c2, c3 = st.columns(2)
    centre = c2.number_input("Centre", value=None, key=k_centre, disabled=not manual,
                             format="%g", step=step, placeholder="VOI LUT table")
    width = c3.number_input("Width", value=None, min_value=MIN_WIDTH, key=k_width,
                            disabled=not manual, format="%g", step=step,
                            placeholder="VOI LUT table")
    if manual:
        if centre is None or width is None:
            st.caption("Type a centre and a width.")
        else:
            try:
                shown = rendered((float(centre), float(width)))
            except ScanError as err:
                st.error(str(err))
        st.caption("Manual window, in the scan's stored units after the rescale / modality LUT "
                   "(Hounsfield units on CT).")
    else:
        st.caption(options[choice].explanation[:1].upper() + options[choice].explanation[1:]
                   + ".")
    saved[scan.sha256] = (choice, centre, width)
    return shown
