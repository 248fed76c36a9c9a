"""Display-ready metadata summaries with protected health information (PHI) masked.

Masking is one-way: the :class:`~core.imaging.scan.Scan` never holds the full values, so they
cannot be shown or logged by mistake. Names keep two letters of the family name and the first
initial (``"Doe^John"`` → ``"Do^J***"``), identifiers keep their last four characters
(``"12345678"`` → ``"****5678"``), dates keep only the year, addresses and other free text are
replaced by ``"***"``. Nothing in this module logs.
"""
from __future__ import annotations

from typing import Any

from pydicom.dataset import Dataset

__all__ = ["mask_name", "mask_id", "mask_date", "mask_text", "dicom_summary", "format_window",
           "format_spacing", "PHI_KEYWORDS"]

MASK = "***"


def mask_name(value: Any) -> str:
    """Mask a (PN) person name: two letters of the family name, first initial of the given."""
    text = str(value or "").strip()
    if not text:
        return ""
    parts = text.split("^")
    family = parts[0].strip()
    given = parts[1].strip() if len(parts) > 1 else ""
    masked = family[:2] if len(family) > 2 else family[:1]
    if given:
        masked += "^" + given[:1]
    return masked + MASK


def mask_id(value: Any) -> str:
    """Mask an identifier: ``"****"`` plus the last four characters (only when longer than 6)."""
    text = str(value or "").strip()
    if not text:
        return ""
    return "****" + (text[-4:] if len(text) > 6 else "")


def mask_date(value: Any) -> str:
    """Keep only the year of a DA/DT value (``"19700101"`` → ``"1970-**-**"``)."""
    text = str(value or "").strip()
    if len(text) >= 4 and text[:4].isdigit():
        return f"{text[:4]}-**-**"
    return MASK if text else ""


def mask_text(value: Any) -> str:
    """Free text that may identify a person (addresses, institution): fully masked."""
    return MASK if str(value or "").strip() else ""


#: (keyword, label, masker) for identifying attributes shown in the summary (masked).
PHI_KEYWORDS: tuple[tuple[str, str, Any], ...] = (
    ("PatientName", "Patient name", mask_name),            # (0010,0010)
    ("PatientID", "Patient ID", mask_id),                  # (0010,0020)
    ("PatientBirthDate", "Birth date", mask_date),         # (0010,0030)
    ("PatientAddress", "Patient address", mask_text),      # (0010,1040)
    ("AccessionNumber", "Accession number", mask_id),      # (0008,0050)
    ("StudyDate", "Study date", mask_date),                # (0008,0020)
    ("InstitutionName", "Institution", mask_text),         # (0008,0080)
    ("InstitutionAddress", "Institution address", mask_text),  # (0008,0081)
    ("ReferringPhysicianName", "Referring physician", mask_name),  # (0008,0090)
)

# (keyword, label) shown in full: not identifying.
_PLAIN_KEYWORDS = (
    ("Modality", "Modality"),                          # (0008,0060)
    ("BodyPartExamined", "Body part"),                 # (0018,0015)
    ("StudyDescription", "Study description"),         # (0008,1030)
    ("SeriesDescription", "Series description"),       # (0008,103E)
    ("PatientSex", "Patient sex"),                     # (0010,0040)
    ("Manufacturer", "Manufacturer"),                  # (0008,0070)
    ("ManufacturerModelName", "Model"),                # (0008,1090)
    ("PhotometricInterpretation", "Photometric interpretation"),  # (0028,0004)
    ("BitsStored", "Bits stored"),                     # (0028,0101)
    ("InstanceNumber", "Instance number"),             # (0020,0013)
)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return "\\".join(str(v) for v in value)
    return str(value).strip()


def format_window(window: tuple[float, float] | None, source: str) -> str:
    if window is None:
        return source
    return f"C {window[0]:g} / W {window[1]:g} ({source})"


def format_spacing(spacing: tuple[float, float] | None) -> str:
    if spacing is None:
        return "unknown"
    return f"{spacing[0]:g} × {spacing[1]:g} mm"


def dicom_summary(ds: Dataset, *, transfer_syntax: str | None) -> dict[str, str]:
    """Summary of ``ds`` (header only): plain fields in full, PHI masked; empty fields dropped."""
    out: dict[str, str] = {"Format": "DICOM"}
    for keyword, label in _PLAIN_KEYWORDS:
        text = _text(ds.get(keyword))
        if text:
            out[label] = text
    if transfer_syntax:
        out["Transfer syntax"] = transfer_syntax
    for keyword, label, masker in PHI_KEYWORDS:
        masked = masker(ds.get(keyword))
        if masked:
            out[label] = masked
    return out
