"""Display-ready metadata summaries and file names with protected health information (PHI)
masked.

Masking is one-way: the :class:`~core.imaging.scan.Scan` never holds the full values, so they
cannot be shown, stored or logged by mistake. Names keep two letters of the family name and the
first initial (``"Doe^John"`` → ``"Do^J***"``), identifiers keep their last four characters
(``"12345678"`` → ``"****5678"``), dates keep only the year, addresses are replaced by
``"***"``. Nothing in this module logs.

Free text follows DICOM PS3.15 Annex E: the Basic Application Level Confidentiality Profile
removes descriptions and comments ((0008,1030) Study Description, (0008,103E) Series
Description, (0020,4000) Image Comments, ...) and private tags, because people type names and
record numbers into them. The summary therefore shows attributes in full only from an
allow-list of coded, non-identifying ones (:data:`SHOWN_IN_FULL`); descriptions are shown only
when they pass the *Clean Descriptors Option* test of :func:`clean_descriptor` (every word a
known acquisition term, nothing that matches the file's own patient identifiers), otherwise
``"***"``; private tags and every other attribute are never shown.

File names are masked by :func:`mask_filename` (the rule is in its docstring) before an upload's
name is shown, used in a download name or stored.
"""
from __future__ import annotations

import io
import re
import warnings
from collections.abc import Iterable
from typing import Any

from pydicom.dataset import Dataset

__all__ = ["mask_name", "mask_id", "mask_date", "mask_text", "dicom_summary", "format_window",
           "format_spacing", "PHI_KEYWORDS", "SHOWN_IN_FULL", "DESCRIPTOR_KEYWORDS",
           "clean_descriptor", "dicom_identifiers", "mask_filename", "mask_upload_name",
           "FILENAME_MASK"]

MASK = "***"
#: What replaces an identifier in a file name (file-system safe, unlike ``*``).
FILENAME_MASK = "redacted"


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

#: The allow-list: (keyword, label) shown in full. Coded values (CS) and numbers, plus the
#: device's maker and model, none of which PS3.15's Basic Profile removes (Patient's Sex is
#: kept as in its Retain Patient Characteristics Option). Even these are masked when they
#: contain one of the file's own patient identifiers.
SHOWN_IN_FULL: tuple[tuple[str, str], ...] = (
    ("Modality", "Modality"),                          # (0008,0060) CS
    ("BodyPartExamined", "Body part"),                 # (0018,0015) CS
    ("PatientSex", "Patient sex"),                     # (0010,0040) CS
    ("Manufacturer", "Manufacturer"),                  # (0008,0070)
    ("ManufacturerModelName", "Model"),                # (0008,1090)
    ("PhotometricInterpretation", "Photometric interpretation"),  # (0028,0004) CS
    ("BitsStored", "Bits stored"),                     # (0028,0101) US
    ("InstanceNumber", "Instance number"),             # (0020,0013) IS
)

#: Free-text descriptors (Basic Profile: removed; Clean Descriptors Option: kept once cleaned):
#: shown only when :func:`clean_descriptor` finds nothing but acquisition terms, else ``***``.
DESCRIPTOR_KEYWORDS: tuple[tuple[str, str], ...] = (
    ("StudyDescription", "Study description"),         # (0008,1030) LO
    ("SeriesDescription", "Series description"),       # (0008,103E) LO
    ("ProtocolName", "Protocol"),                      # (0018,1030) LO
    ("ImageComments", "Image comments"),               # (0020,4000) LT
)

# Words a descriptor may consist of (lower case): modalities, anatomy, planes, sequences,
# contrast, common protocol words. A word not in here makes the descriptor identifying.
_DESCRIPTOR_WORDS = frozenset("""
mr mri ct cta mra mrv pet spect nm us xr cr dx mg rf xa ot sc fmri angio angiography
brain head neuro skull face facial sinus sinuses orbit orbits iac pituitary sella temporal
spine cervical thoracic lumbar sacrum whole body neck chest thorax lung lungs heart cardiac
abdomen abd pelvis liver kidney kidneys renal pancreas prostate breast knee hip shoulder
ankle wrist hand foot elbow extremity upper lower vessels carotid circle willis
ax axial sag sagittal cor coronal obl oblique tra transverse trans 2d 3d mpr mip minip
t1 t2 t1w t2w t2star pd pdw flair stir dwi dti adc swi gre tse fse se ir epi mprage spgr
bravo space cube vibe haste tof pc bold perfusion perf diffusion tensor cine fiesta
fat sat fs water dixon in out opp phase loc localizer localiser scout survey calibration
with without w wo and or plus contrast gad gd gado post pre non noncontrast enhanced
arterial venous portal delayed late early dynamic routine standard std protocol
thin thick slice slices slab volume vol high low res resolution fast hr lr iso
bone soft tissue window lung mediastinum mediastinal stroke subdural default auto full
narrow wide normal sharp smooth kernel recon reconstruction reformat reformats
series image images study exam scan screening follow up fu baseline
left right lt rt l r bilateral bil small large test phantom sample example demo
""".split())

_SEPARATORS = re.compile(r"[\s_\-/,;:()\[\]+.=^&#*]+")
_CODE = re.compile(r"^(?:\d{1,3}[a-z]{0,3}|[a-z]{1,3}\d{1,4}[a-z]{0,2})$")


def _word_ok(word: str) -> bool:
    """A descriptor word: a known term (optionally numbered, "window1"), or a short code
    such as "t2", "3d", "5mm", "b1000" (never a run of 4+ bare digits)."""
    w = word.lower()
    return w in _DESCRIPTOR_WORDS or bool(_CODE.match(w)) or (
        w.rstrip("0123456789") in _DESCRIPTOR_WORDS and len(w) - len(w.rstrip("0123456789")) <= 3)


def _items(value: Any) -> list[Any]:
    """The values of a possibly multi-valued element."""
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return list(value)
    return [value]


def _name_parts(value: Any) -> list[str]:
    """The components of a (PN) person name, each at least two characters."""
    out = []
    for item in _items(value):
        for part in re.split(r"[\^=,\s]+", str(item or "")):
            part = part.strip().strip(".")
            if len(part) >= 2:
                out.append(part)
    return out


def dicom_identifiers(ds: Dataset) -> tuple[str, ...]:
    """The strings in ``ds`` that identify people: name components of (0010,0010) Patient's
    Name, (0010,1001) Other Patient Names, (0008,0090) Referring Physician and (0008,1050)
    Performing Physician, and (0010,0020) Patient ID, (0010,1000) Other Patient IDs,
    (0008,0050) Accession Number, (0010,0030) Birth Date. For matching only; never shown."""
    found: list[str] = []
    for keyword in ("PatientName", "OtherPatientNames", "ReferringPhysicianName",
                    "PerformingPhysicianName", "PatientMotherBirthName"):
        try:
            found += _name_parts(ds.get(keyword))
        except Exception:  # noqa: BLE001 - a damaged element identifies nothing
            continue
    for keyword in ("PatientID", "OtherPatientIDs", "AccessionNumber", "PatientBirthDate"):
        try:
            found += [str(v).strip() for v in _items(ds.get(keyword))
                      if v is not None and str(v).strip()]
        except Exception:  # noqa: BLE001
            continue
    return tuple(dict.fromkeys(v for v in found if len(v) >= 2))


def _matches_identifier(text: str, identifiers: Iterable[str]) -> bool:
    """Whether ``text`` contains one of ``identifiers``: as a substring for identifiers of 4+
    characters, as a whole word for shorter ones (case-insensitive)."""
    low = text.lower()
    words = {w for w in _SEPARATORS.split(low) if w}
    for ident in identifiers:
        i = ident.lower()
        if (len(i) >= 4 and i in low) or i in words:
            return True
    return False


def clean_descriptor(value: Any, identifiers: Iterable[str] = ()) -> str:
    """A free-text descriptor shown only when it is clean (PS3.15 E.3.5, Clean Descriptors
    Option): every word a known acquisition term or short code (:func:`_word_ok`), and none of
    the file's ``identifiers``; otherwise ``"***"``. Empty stays empty.

    ``"MRI BRAIN W/WO CONTRAST"`` and ``"AX T2 FLAIR"`` are shown; ``"MRI brain for Doe^Jane
    MRN-778812"`` is not (``for``, ``Doe``, ``Jane``, ``MRN`` and ``778812`` are not terms).
    """
    text = _text(value)
    if not text:
        return ""
    words = [w for w in _SEPARATORS.split(text) if w]
    if len(text) > 64 or not words or not all(_word_ok(w) for w in words) or \
            _matches_identifier(text, identifiers):
        return MASK
    return text


# --- file names -------------------------------------------------------------------------

_EXTENSIONS = frozenset("dcm dicom dic ima img png jpg jpeg tif tiff zip gz bmp gif nii raw "
                        "j2k jp2 jpx rle webp".split())
_ID_WORDS = frozenset("mrn pid mr# acc accession accno acn ssn nhs dob id patid patientid "
                      "hospno".split())
_FILE_SEP = re.compile(r"([\s_\-.,;+()\[\]^=&#~']+)")
_MARK = "\x00"
_DATE_PATTERNS = (
    re.compile(r"(?<!\d)(?:19|20)\d{2}[-_.]?(?:0[1-9]|1[0-2])[-_.]?(?:0[1-9]|[12]\d|3[01])"
               r"(?!\d)"),                                              # 20240301, 2024-03-01
    re.compile(r"(?<!\d)(?:0?[1-9]|[12]\d|3[01])[-_.](?:0?[1-9]|1[0-2])[-_.](?:19|20)?\d{2}"
               r"(?!\d)"),                                              # 01-03-2024, 1.3.24
    re.compile(r"(?<!\d)(?:0?[1-9]|1[0-2])[-_.](?:0?[1-9]|[12]\d|3[01])[-_.](?:19|20)\d{2}"
               r"(?!\d)"),                                              # 03-31-2024
)
_UID = re.compile(r"(?<![\d.])\d+(?:\.\d+){3,}")                        # 1.2.840.113619...
_LONG_DIGITS = re.compile(r"\d{6,}")


def _mask_identifiers_in(stem: str, identifiers: Iterable[str]) -> str:
    """Mark (with NUL) every occurrence of an identifier of 4+ characters, dates and UIDs."""
    for ident in sorted(identifiers, key=len, reverse=True):
        if len(ident) >= 4:
            variants = {ident, re.sub(r"[\^\s]+", "_", ident), re.sub(r"[\^\s]+", "", ident)}
            for v in variants:
                stem = re.sub(re.escape(v), _MARK, stem, flags=re.IGNORECASE)
    for pattern in (_UID, *_DATE_PATTERNS):
        stem = pattern.sub(_MARK, stem)
    return stem


def _mask_component(part: str, identifiers: tuple[str, ...]) -> str:
    stem, ext = part, ""
    dot = part.rfind(".")
    if 0 < dot < len(part) - 1 and part[dot + 1:].lower() in _EXTENSIONS:
        stem, ext = part[:dot], part[dot:]
    short_ids = {i.lower() for i in identifiers if len(i) < 4}
    pieces = _FILE_SEP.split(_mask_identifiers_in(stem, identifiers))
    # pieces alternate: token, separator, token, ...
    masked = [False] * len(pieces)
    for i in range(0, len(pieces), 2):
        token = pieces[i]
        low = token.lower()
        if (_MARK in token or _LONG_DIGITS.search(token) or low in short_ids
                or low in _ID_WORDS):
            masked[i] = True
            if low in _ID_WORDS and i + 2 < len(pieces):     # the value after "MRN", "ID", ...
                masked[i + 2] = True
        # PN form "Doe^Jane": the words on both sides of a caret are a person's name.
        if i + 1 < len(pieces) and "^" in pieces[i + 1] and token:
            masked[i] = True
            if i + 2 < len(pieces):
                masked[i + 2] = True
    out: list[str] = []
    i = 0
    while i < len(pieces):
        if masked[i] if i % 2 == 0 else False:
            j = i
            while j + 2 < len(pieces) and masked[j + 2]:
                j += 2                      # one mask for a run of masked words
            out.append(FILENAME_MASK)
            i = j + 1
            continue
        out.append(pieces[i].replace(_MARK, FILENAME_MASK))
        i += 1
    return "".join(out) + ext


def mask_filename(name: str | None, identifiers: Iterable[str] = ()) -> str | None:
    """``name`` with identifiers replaced by ``"redacted"`` (one per run of masked words).

    The rule, per folder component of the name, on the part before a known image/archive
    extension (``.dcm``, ``.png``, ``.zip``, ...; the extension is kept):

    - the file's own ``identifiers`` (see :func:`dicom_identifiers`: patient name parts,
      IDs, accession number, birth date): anywhere when 4+ characters long, as a whole word
      when shorter (``Doe_Jane_MRN-778812.dcm`` of patient ``Doe^Jane`` → ``redacted.dcm``);
    - the words ``MRN``, ``ID``, ``PID``, ``ACC``/``accession``, ``DOB``, ``SSN``, ``NHS``
      and the word after each;
    - runs of 6 or more digits (record and accession numbers), DICOM UIDs, dates
      (``20240301``, ``2024-03-01``, ``01.03.2024``, ``03-31-2024``);
    - words joined by ``^`` (DICOM's person-name form, ``Doe^Jane``).

    Everything else is kept, so ``MR_small``, ``IM0001.dcm``, ``Tr-gl_0167.jpg`` and
    ``brain_512x512.png`` are unchanged. Without the file's identifiers a plain name such as
    ``Jane_Doe.png`` cannot be told from a word and is kept: DICOM uploads are checked against
    their own header by :func:`mask_upload_name`.
    """
    if not name:
        return name
    ids = tuple(i for i in identifiers if i and len(i.strip()) >= 2)
    parts = re.split(r"([/\\])", name)
    return "".join(p if p in ("/", "\\") else _mask_component(p, ids) for p in parts)


def _header_identifiers(data: bytes) -> tuple[str, ...]:
    """:func:`dicom_identifiers` of ``data`` when it is DICOM (header only), else ``()``."""
    from core.imaging.detect import sniff

    try:
        if sniff(data[:1024]) != "dicom":
            return ()
    except Exception:  # noqa: BLE001 - not an image at all
        return ()
    import pydicom

    if data[:4] == b"DICM":
        data = b"\x00" * 128 + data
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(io.BytesIO(data), force=True, stop_before_pixels=True)
        return dicom_identifiers(ds)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException:  # noqa: BLE001 - a damaged header: the generic rules still apply
        return ()


def mask_upload_name(name: str | None, data: bytes) -> str | None:
    """:func:`mask_filename` of an upload's ``name``, with the identifiers of its own DICOM
    header when ``data`` is DICOM (read without the pixel data)."""
    return mask_filename(name, _header_identifiers(data) if data else ())


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
    """Summary of ``ds`` (header only), empty fields dropped: the :data:`SHOWN_IN_FULL`
    allow-list in full, :data:`DESCRIPTOR_KEYWORDS` only when clean (else ``***``),
    :data:`PHI_KEYWORDS` masked; nothing else (no private tags, no other free text)."""
    ids = dicom_identifiers(ds)
    out: dict[str, str] = {"Format": "DICOM"}
    for keyword, label in SHOWN_IN_FULL:
        text = _text(ds.get(keyword))
        if text:
            out[label] = MASK if _matches_identifier(text, ids) else text
    for keyword, label in DESCRIPTOR_KEYWORDS:
        text = clean_descriptor(ds.get(keyword), ids)
        if text:
            out[label] = text
    if transfer_syntax:
        out["Transfer syntax"] = transfer_syntax
    for keyword, label, masker in PHI_KEYWORDS:
        masked = masker(ds.get(keyword))
        if masked:
            out[label] = masked
    return out
