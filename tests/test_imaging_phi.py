"""PHI in free text and in file names (issue 15 item 5): planted in every place, found nowhere.

A DICOM with the patient's name and record number planted in the study / series descriptions,
the protocol, the image comments, a window explanation and a private tag, uploaded under a file
name (and inside a zip under member names) that carry them too: none of the planted strings may
reach the metadata summary, the scan's file name, its repr, or the database's scans row.
"""
from __future__ import annotations

import io
import json
import re
import zipfile

import pydicom
import pytest
from pydicom.data import get_testdata_file

from core.imaging import load_scan, load_uploads
from core.imaging.phi import (FILENAME_MASK, clean_descriptor, dicom_identifiers, dicom_summary,
                              mask_filename, mask_upload_name)

#: Strings that must never appear: name parts, record number, phone number, birth date.
PLANTED = ("Doe", "Jane", "778812", "555-0199", "19700301", "1970-03-01", "Janeway")


def phi_dicom(**overrides: str) -> bytes:
    """MR_small with PHI planted in every free-text place (and a clean series description)."""
    ds = pydicom.dcmread(get_testdata_file("MR_small.dcm"))
    ds.PatientName = "Doe^Jane"
    ds.PatientID = "MRN-778812"
    ds.PatientBirthDate = "19700301"
    ds.StudyDescription = "MRI brain for Doe^Jane MRN-778812"
    ds.SeriesDescription = "AX T2 FLAIR"                         # clean: shown
    ds.ProtocolName = "Janeway protocol"
    ds.ImageComments = "call Jane at 555-0199 re MRN 778812"
    ds.WindowCenterWidthExplanation = "for Jane"
    block = ds.private_block(0x0011, "ACME PHI", create=True)
    block.add_new(0x01, "LO", "Doe^Jane 778812")
    for keyword, value in overrides.items():
        setattr(ds, keyword, value)
    buf = io.BytesIO()
    ds.save_as(buf)
    return buf.getvalue()


def planted_in(text: str) -> list[str]:
    """The planted strings found in ``text`` as whole words (case-insensitive; "_", "^", digits
    and punctuation separate words, so "Doe_Jane" finds both and "does" finds neither)."""
    return [p for p in PLANTED
            if re.search(rf"(?<![A-Za-z0-9]){re.escape(p)}(?![A-Za-z0-9])", text, re.I)]


def assert_clean(text: str) -> None:
    found = planted_in(text)
    assert not found, f"{found} in {text!r}"


def test_summary_masks_free_text_and_keeps_clean_descriptors():
    scan = load_scan(phi_dicom())
    meta = scan.metadata
    assert_clean(json.dumps(meta, ensure_ascii=False))
    assert_clean(repr(scan))
    assert meta["Study description"] == "***"                   # names + MRN: masked
    assert meta["Image comments"] == "***" and meta["Protocol"] == "***"
    assert meta["Series description"] == "AX T2 FLAIR"          # acquisition terms only
    assert meta["Patient name"] == "Do^J***" and meta["Modality"] == "MR"
    assert not any("ACME" in v for v in meta.values())          # private tags never shown
    assert "File window" in scan.window_source or scan.window_source == "file window"


def test_summary_allow_list_masks_an_identifier_in_an_allowed_field():
    ds = pydicom.dcmread(io.BytesIO(phi_dicom(Manufacturer="Doe Imaging")))
    summary = dicom_summary(ds, transfer_syntax=None)
    assert summary["Manufacturer"] == "***"
    assert_clean(json.dumps(summary))


@pytest.mark.parametrize("text, ids, shown", [
    ("MRI BRAIN W/WO CONTRAST", (), True), ("AX T2 FLAIR", (), True), ("Sag T1 5mm", (), True),
    ("CT HEAD WO", ("Smith", "Jo"), True), ("WINDOW1", (), True), ("DWI b1000", (), True),
    ("MRI brain for Doe^Jane MRN-778812", (), False), ("Smith", (), False),
    ("brain 778812", (), False), ("brain 2024", (), False),
    ("CT HEAD WO", ("Head", "Jo"), False),     # "Head" is this patient's family name
])
def test_clean_descriptor(text, ids, shown):
    assert (clean_descriptor(text, ids) == text) is shown


def test_identifiers_come_from_the_header():
    ids = dicom_identifiers(pydicom.dcmread(io.BytesIO(phi_dicom())))
    assert {"Doe", "Jane", "MRN-778812", "19700301"} <= set(ids)


@pytest.mark.parametrize("name, masked", [
    ("MR_small", "MR_small"), ("MR_small.dcm", "MR_small.dcm"), ("IM0001.dcm", "IM0001.dcm"),
    ("Tr-gl_0167.jpg", "Tr-gl_0167.jpg"), ("brain_512x512.png", "brain_512x512.png"),
    ("CT_small.dcm", "CT_small.dcm"), ("series/IM-0001-0002.dcm", "series/IM-0001-0002.dcm"),
    ("scan_MRN-778812.dcm", "scan_redacted.dcm"), ("MRN778812.png", "redacted.png"),
    ("ID_A1234_knee.png", "redacted_knee.png"), ("acc 12345678.dcm", "redacted.dcm"),
    ("knee_20240301.png", "knee_redacted.png"), ("knee_2024-03-01.png", "knee_redacted.png"),
    ("knee_01.03.2024.tif", "knee_redacted.tif"), ("Doe^Jane.dcm", "redacted.dcm"),
    ("1.2.840.113619.2.55.3.6046.dcm", "redacted.dcm"), ("redacted.dcm", "redacted.dcm"),
    ("", ""),
])
def test_mask_filename(name, masked):
    assert mask_filename(name) == masked
    assert mask_filename(masked) == masked                      # idempotent


@pytest.mark.parametrize("name", ["Doe_Jane_MRN-778812.dcm", "JANE DOE.dcm", "doejane.dcm",
                                  "Jane-Doe_head.dcm", "x_jane_19700301.dcm"])
def test_mask_upload_name_uses_the_files_own_identifiers(name):
    masked = mask_upload_name(name, phi_dicom())
    assert_clean(masked)
    assert masked.endswith(".dcm") and FILENAME_MASK in masked
    # Without the header only the generic rules apply: the name parts are not known.
    assert "Jane" in mask_filename("Doe_Jane_MRN-778812.dcm")
    assert mask_upload_name("Doe_Jane_MRN-778812.dcm", phi_dicom()) == "redacted.dcm"


def test_zip_member_names_and_scan_file_names_are_masked():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("Doe^Jane/MRN-778812/Doe_Jane_19700301.dcm", phi_dicom())
        zf.writestr("Doe^Jane/notes_778812.bin", b"not a scan")
    uploads = load_uploads("study.zip", buf.getvalue())
    assert len(uploads) == 2
    for upload in uploads:
        assert_clean(upload.name)
        if upload.error is not None:
            assert_clean(str(upload.error))
    scan = next(u.scan for u in uploads if u.ok)
    assert_clean(scan.filename)
    assert scan.filename == "redacted/redacted/redacted.dcm"


def test_database_row_holds_no_planted_phi(sqlite_url):
    import inspect

    from sqlalchemy import text

    from core.db import dispose_engines, init_db, session_scope
    from core.db.scans import record_scan

    scan = load_scan(phi_dicom(), mask_upload_name("Doe_Jane_MRN-778812.dcm", phi_dicom()))
    extra = ({"display_name": scan.filename}
             if "display_name" in inspect.signature(record_scan).parameters else {})
    engine = init_db(sqlite_url)
    try:
        with session_scope(engine) as s:
            record_scan(s, scan.sha256, scan.metadata, scan.source_format, scan.modality,
                        scan.pixels.shape, user_id=None, **extra)
        with session_scope(engine) as s:
            rows = [dict(r._mapping) for r in s.execute(text("SELECT * FROM scans"))]
            audit = [dict(r._mapping) for r in s.execute(text("SELECT * FROM audit_log"))]
        assert len(rows) == 1 and rows[0]["summary"]
        assert_clean(json.dumps(rows + audit, ensure_ascii=False, default=str))
    finally:
        dispose_engines()
