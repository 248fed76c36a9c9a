"""AppTest: windowing per modality and scan (issue 14 item 5, issue 15 item 1's width field) and
PHI in file names and free text on the Analyze page (issue 15 item 5)."""
from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file

from app_env import app_env, logged_in, mr_dicom_bytes, tiny_weights  # noqa: F401
from test_imaging_phi import phi_dicom, planted_in


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _keys(data: bytes) -> tuple[str, str, str]:
    """The window widgets of the scan with these bytes on Analyze (keys include its hash)."""
    base = f"analyze_window_{_sha(data)[:16]}"
    return f"{base}_preset", f"{base}_centre", f"{base}_width"


def _ct_bytes() -> bytes:
    return Path(get_testdata_file("CT_small.dcm")).read_bytes()


def _fields(at, data: bytes) -> tuple:
    _, c, w = _keys(data)
    return at.number_input(key=c).value, at.number_input(key=w).value


def _captions(at) -> list[str]:
    return [c for img in at.image for c in img.captions]


def _pick(at, data: bytes, member: int = 0):
    """Show the scan with these bytes (the picker's values are "<sha256>:<member>")."""
    picker = at.selectbox(key="analyze_pick")
    value = f"{_sha(data)}:{member}"
    return picker.set_value(value).run() if picker.value != value else at


def _upload(at, name: str, data: bytes):
    at.file_uploader(key="scan").upload(name, data, "application/octet-stream").run()
    assert not at.exception, at.exception
    return at


def test_mr_gets_no_ct_presets_fields_show_the_window_in_force_and_windows_stay_with_their_scan(
        app_env):
    mr, ct = mr_dicom_bytes(), _ct_bytes()
    at = _upload(logged_in("radiologist", app_env["ids"]).run(), "MR_small", mr)
    preset, centre, width = _keys(mr)
    box = at.selectbox(key=preset)
    assert box.value == "File window"                 # MR_small's own (0028,1050)/(0028,1051)
    assert not any(o.startswith("CT ") or "brain" in o.lower() for o in box.options), box.options
    assert {"Min–max", "Percentile 1–99 %", "Manual"} <= set(box.options)
    assert _fields(at, mr) == (600, 1600)
    assert at.number_input(key=centre).disabled
    at.selectbox(key=preset).set_value("Min–max").run()
    assert _fields(at, mr) == (1136, 2018)            # stored 127 … 2145: (127 + 2145) / 2
    at.selectbox(key=preset).set_value("Percentile 1–99 %").run()
    percentile = _fields(at, mr)
    assert percentile != (1136, 2018) and percentile[1] < 2018
    at.selectbox(key=preset).set_value("Manual").run()
    assert not at.number_input(key=centre).disabled
    assert _fields(at, mr) == percentile    # Manual starts from the window last in force
    at.number_input(key=centre).set_value(1300.0)
    at.number_input(key=width).set_value(300.0).run()
    assert not at.exception
    assert any("MR_small" in c and "manual" in c for c in _captions(at)), _captions(at)

    # A second scan gets its own window: nothing carries over from the MR.
    _upload(at, "CT_small", ct)
    at = _pick(at, ct)
    ct_preset, _, _ = _keys(ct)
    assert at.selectbox(key=ct_preset).value == "Min–max"
    assert _fields(at, ct) == (135.5, 2063.0)
    assert "CT brain (C 40 / W 80)" in at.selectbox(key=ct_preset).options
    at.selectbox(key=ct_preset).set_value("CT brain (C 40 / W 80)").run()
    assert _fields(at, ct) == (40, 80)
    assert any("preset brain" in c for c in _captions(at))

    # Back to the MR: its manual window is restored; then the CT's preset is too.
    at = _pick(at, mr)
    assert at.selectbox(key=preset).value == "Manual"
    assert _fields(at, mr) == (1300, 300)
    assert any("MR_small" in c and "manual" in c for c in _captions(at))
    at = _pick(at, ct)
    assert at.selectbox(key=ct_preset).value == "CT brain (C 40 / W 80)"
    assert _fields(at, ct) == (40, 80)
    assert not at.exception


def test_constant_image_and_voi_lut_windows_never_break_the_fields(app_env):
    """Issue 15 item 1: RescaleSlope 0 makes a constant image whose min-max width is 1e-06;
    the Width field used to raise StreamlitValueBelowMinError."""
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    ds.RescaleSlope = 0
    buf = io.BytesIO()
    ds.save_as(buf)
    flat = buf.getvalue()
    at = _upload(logged_in("radiologist", app_env["ids"]).run(), "flat.dcm", flat)
    preset, centre, width = _keys(flat)
    for choice in at.selectbox(key=preset).options:
        at.selectbox(key=preset).set_value(choice).run()
        assert not at.exception, (choice, at.exception)
        w = at.number_input(key=width).value
        assert w is not None and w > 0, choice
    at.selectbox(key=preset).set_value("Min–max").run()
    assert at.number_input(key=width).value == pytest.approx(1e-6)   # min = max
    at.selectbox(key=preset).set_value("Manual").run()
    at.number_input(key=width).set_value(1e-6).run()
    assert not at.exception
    assert not [e.value for e in at.error if "window" in e.value.lower()]

    voi = Path(get_testdata_file("vlut_04.dcm")).read_bytes()
    _upload(at, "vlut_04.dcm", voi)
    at = _pick(at, voi)
    assert at.selectbox(key=_keys(voi)[0]).value == "File VOI LUT"
    assert _fields(at, voi) == (None, None)          # a LUT table has no centre / width


def _all_text(at) -> str:
    """Every element the page rendered (protos as text: captions, labels, options, tables,
    download buttons, headers), except the uploader (the browser's own file list)."""
    out: list[str] = []

    def walk(node) -> None:
        proto = getattr(node, "proto", None)
        if proto is not None and type(proto).__name__ != "FileUploader":
            out.append(str(proto))
        for child in getattr(node, "children", {}).values():
            walk(child)

    walk(at._tree)
    return "\n".join(out)


def test_planted_phi_reaches_no_caption_download_name_table_or_database(app_env, monkeypatch):
    import streamlit as st

    names: list[str] = []
    original = st.download_button

    def recording(*args, **kwargs):
        names.append(str(kwargs.get("file_name")))
        return original(*args, **kwargs)

    monkeypatch.setattr(st, "download_button", recording)
    dicom = phi_dicom()
    at = _upload(logged_in("radiologist", app_env["ids"]).run(), "Doe_Jane_MRN-778812.dcm",
                 dicom)
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w") as zf:
        zf.writestr("Doe^Jane/MRN-778812/Doe_Jane_19700301.dcm", phi_dicom(InstanceNumber="2"))
    _upload(at, "Jane_Doe_778812.zip", zipped.getvalue())
    for data in (dicom, zipped.getvalue()):
        at = _pick(at, data)
        assert not at.exception, at.exception
        with_tree = _all_text(at)
        assert "redacted" in with_tree
        assert not planted_in(with_tree)
    assert names and all("redacted" in n for n in names), names
    assert not planted_in(" ".join(names))
    assert any(c.startswith("redacted.dcm") for c in _captions(_pick(at, dicom))), _captions(at)
    # The Super-resolution page names the same scan and offers downloads named after it.
    names.clear()
    at.switch_page("app_pages/super_resolution.py").run()
    assert not at.exception, at.exception
    page = _all_text(at)
    assert "redacted.dcm" in page
    assert not planted_in(page)
    assert names and all(n.startswith("redacted") for n in names), names

    from sqlalchemy import text

    from core.db import init_db, session_scope

    with session_scope(init_db(app_env["MEDSCAN_DATABASE_URL"])) as s:
        rows = [str(dict(r._mapping)) for r in s.execute(text("SELECT * FROM scans"))]
        audit = [str(dict(r._mapping)) for r in s.execute(text("SELECT * FROM audit_log"))]
    assert len(rows) >= 1
    assert not planted_in(" ".join(rows + audit))
