"""Results sent back to the PACS as DICOM objects built with ``highdicom`` (the maintained
library for derived DICOM objects), each in a new series of the source study:

- :func:`gradcam_secondary_capture`: the Grad-CAM overlay as a Secondary Capture Image
  (PS3.3 A.8.1) with the prediction, calibrated probability, model version and "NOT FOR
  DIAGNOSTIC USE" burned into a caption band *and* written in the header (Image Comments
  (0020,4000), Series Description (0008,103E), Derivation Description (0008,2111),
  Burned In Annotation (0028,0301) = YES), referencing the source image in Source Image
  Sequence (0008,2112).
- :func:`segmentation_object`: the tumour mask as a binary DICOM Segmentation
  (``highdicom.seg``, PS3.3 A.51) referencing the source image (Referenced Series Sequence
  (0008,1115)) and the model version (Segment Algorithm Name / Version).

Patient and study attributes are copied from the source instance by highdicom, never invented;
every object gets new Series and SOP Instance UIDs. Nothing is sent automatically:
:func:`send_objects` stores (STOW-RS) what the user asked for and writes one audit row
(``pacs_send``: who, which study, which object) per object.
"""
from __future__ import annotations

import getpass
import io
from dataclasses import dataclass

import numpy as np

from core.pacs.client import PacsClient, PacsError

__all__ = ["NOT_FOR_DIAGNOSTIC_USE", "MANUFACTURER", "SentObject", "read_source",
           "gradcam_overlay", "is_medscan_result",
           "gradcam_secondary_capture", "segmentation_object", "caption_lines", "send_objects",
           "burn_caption"]

NOT_FOR_DIAGNOSTIC_USE = "NOT FOR DIAGNOSTIC USE"
MANUFACTURER = "MedScan"
#: Series numbers of the derived series (kept clear of the scanner's usual 1-99).
SC_SERIES_NUMBER = 9001
SEG_SERIES_NUMBER = 9002
_MIN_WIDTH = 512      # the burned-in caption must be readable: small scans are upscaled first


@dataclass(frozen=True)
class SentObject:
    """One object stored in the PACS (shown on the page and printed by the CLI)."""
    kind: str                 # "secondary_capture" | "segmentation"
    study_uid: str
    series_uid: str
    sop_uid: str
    sop_class_uid: str
    source_sop_uid: str

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def read_source(data: bytes):
    """The source instance's header and pixels (pydicom), as retrieved from the PACS."""
    import pydicom

    try:
        return pydicom.dcmread(io.BytesIO(data))
    except Exception as err:  # noqa: BLE001 - unreadable source: one readable message
        raise PacsError("The source instance is not a readable DICOM file, so nothing can be "
                        "sent back for it.", code="bad_source") from err


def is_medscan_result(ds) -> bool:
    """Whether ``ds`` is one of the objects this module sends (so it is not analysed again)."""
    return (str(ds.get("Manufacturer", "")) == MANUFACTURER
            and ds.get("SeriesNumber") in (SC_SERIES_NUMBER, SEG_SERIES_NUMBER))


def gradcam_overlay(scan, heatmap: np.ndarray, alpha: float = 0.4) -> np.ndarray:
    """The Grad-CAM overlay sent to the PACS: ``heatmap`` over the scan in its file's own
    window (RGB uint8), as the Analyze page draws it at its default opacity."""
    from core.classifier.gradcam import overlay_heatmap

    return overlay_heatmap(scan.to_uint8(), heatmap, alpha)


def caption_lines(label: str, probability: float, model_version: str, *,
                  calibrated: bool = True) -> list[str]:
    """The words burned into (and written in the header of) the Secondary Capture."""
    kind = "calibrated probability" if calibrated else "probability (uncalibrated)"
    return [f"MedScan Grad-CAM: {label}, {kind} {probability:.1%}",
            f"Model {model_version}",
            f"{NOT_FOR_DIAGNOSTIC_USE} - research prototype"]


def burn_caption(rgb: np.ndarray, lines: list[str]) -> np.ndarray:
    """``rgb`` (H×W×3 uint8) upscaled to at least 512 px wide with a black band below holding
    ``lines`` in white (the last, the warning, in yellow)."""
    import cv2

    img = np.ascontiguousarray(rgb, dtype=np.uint8)
    if img.shape[1] < _MIN_WIDTH:
        f = _MIN_WIDTH / img.shape[1]
        img = cv2.resize(img, (_MIN_WIDTH, max(1, round(img.shape[0] * f))),
                         interpolation=cv2.INTER_LINEAR)
    w = img.shape[1]
    scale = max(0.45, min(1.2, w / 1000))
    line_h = int(34 * scale) + 6
    band = np.zeros((line_h * len(lines) + 12, w, 3), np.uint8)
    for i, text in enumerate(lines):
        colour = (255, 220, 0) if i == len(lines) - 1 else (255, 255, 255)
        # shrink a line that would not fit
        s = scale
        while s > 0.3 and cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, s, 1)[0][0] > w - 16:
            s -= 0.05
        cv2.putText(band, text, (8, 6 + line_h * (i + 1) - 10), cv2.FONT_HERSHEY_SIMPLEX, s,
                    colour, 1 if s < 0.7 else 2, cv2.LINE_AA)
    return np.concatenate([img, band], axis=0)


def _orientation(source) -> tuple[str, str]:
    """Patient Orientation (0020,0020) of the source: its own, else from Image Orientation
    (Patient) (0020,0037), else axial ("L", "P")."""
    own = source.get("PatientOrientation")
    if own and len(own) == 2 and all(str(v) for v in own):
        return str(own[0]), str(own[1])
    iop = source.get("ImageOrientationPatient")
    if iop is None:
        sfg = source.get("SharedFunctionalGroupsSequence")
        try:
            iop = sfg[0].PlaneOrientationSequence[0].ImageOrientationPatient
        except (TypeError, IndexError, AttributeError):
            iop = None
    if iop is not None and len(iop) == 6:
        def letter(vec) -> str:
            axis = int(np.argmax(np.abs(vec)))
            return ("L", "P", "H")[axis] if vec[axis] > 0 else ("R", "A", "F")[axis]
        return letter([float(v) for v in iop[:3]]), letter([float(v) for v in iop[3:]])
    return "L", "P"


def _source_reference(source, frame_index: int | None):
    from pydicom import Dataset

    ref = Dataset()
    ref.ReferencedSOPClassUID = source.SOPClassUID
    ref.ReferencedSOPInstanceUID = source.SOPInstanceUID
    if frame_index is not None and int(source.get("NumberOfFrames", 1) or 1) > 1:
        ref.ReferencedFrameNumber = int(frame_index) + 1
    return ref


def gradcam_secondary_capture(source, overlay_rgb: np.ndarray, *, label: str,
                              probability: float, model_version: str, calibrated: bool = True,
                              frame_index: int | None = None, series_uid: str | None = None,
                              instance_number: int = 1):
    """A Secondary Capture of ``overlay_rgb`` (the Grad-CAM overlay, H×W×3 uint8) with its
    caption, in the source's study (patient and study attributes copied by highdicom)."""
    import highdicom as hd
    from pydicom import Sequence
    from pydicom.uid import ExplicitVRLittleEndian

    lines = caption_lines(label, probability, model_version, calibrated=calibrated)
    pixels = burn_caption(overlay_rgb, lines)
    try:
        sc = hd.sc.SCImage.from_ref_dataset(
            ref_dataset=source, pixel_array=pixels, photometric_interpretation="RGB",
            bits_allocated=8, coordinate_system="PATIENT",
            series_instance_uid=series_uid or hd.UID(), series_number=SC_SERIES_NUMBER,
            sop_instance_uid=hd.UID(), instance_number=int(instance_number),
            manufacturer=MANUFACTURER, patient_orientation=_orientation(source),
            transfer_syntax_uid=ExplicitVRLittleEndian)
    except (ValueError, TypeError, AttributeError) as err:
        raise PacsError(f"The Grad-CAM image could not be built as DICOM for this source "
                        f"({err}).", code="bad_source") from err
    sc.SeriesDescription = f"MedScan Grad-CAM - {NOT_FOR_DIAGNOSTIC_USE}"
    sc.ImageComments = " | ".join(lines)
    sc.BurnedInAnnotation = "YES"
    sc.DerivationDescription = (f"Grad-CAM overlay of the MedScan classifier {model_version}; "
                                f"{NOT_FOR_DIAGNOSTIC_USE}")[:1024]
    sc.SourceImageSequence = Sequence([_source_reference(source, frame_index)])
    sc.SoftwareVersions = model_version[:64]
    return sc


def segmentation_object(source, mask: np.ndarray, *, model_version: str,
                        frame_index: int | None = None):
    """A binary DICOM Segmentation of ``mask`` (H×W bool, at the source's size; for a
    multi-frame source, of frame ``frame_index``) with one segment, "Tumour"."""
    import highdicom as hd
    from pydicom.sr.codedict import codes

    mask = np.asarray(mask, bool)
    rows, cols = int(source.Rows), int(source.Columns)
    if mask.shape != (rows, cols):
        raise PacsError(f"The tumour mask ({mask.shape[1]}×{mask.shape[0]}) does not match the "
                        f"source image ({cols}×{rows}).", code="bad_source")
    n_frames = int(source.get("NumberOfFrames", 1) or 1)
    frame = int(frame_index if frame_index is not None else n_frames // 2)
    # An enhanced multi-frame source has per-frame geometry: the SEG gets one frame per source
    # frame (empty ones omitted). A legacy multi-frame (NumberOfFrames, one position) has
    # none: the SEG gets the one analysed frame, and the frame number is written into its
    # derivation reference below.
    per_frame = n_frames > 1 and "PerFrameFunctionalGroupsSequence" in source
    if per_frame:
        pixels = np.zeros((n_frames, rows, cols), bool)
        pixels[frame] = mask
    else:
        pixels = mask[None]
    algorithm = hd.AlgorithmIdentificationSequence(
        name="MedScan tumour segmentation", version=model_version[:64],
        family=codes.cid7162.ArtificialIntelligence)
    segment = hd.seg.SegmentDescription(
        segment_number=1, segment_label="Tumour",
        segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
        segmented_property_type=codes.SCT.Neoplasm,
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
        algorithm_identification=algorithm)
    try:
        seg = hd.seg.Segmentation(
            source_images=[source], pixel_array=pixels,
            segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
            segment_descriptions=[segment], series_instance_uid=hd.UID(),
            series_number=SEG_SERIES_NUMBER, sop_instance_uid=hd.UID(), instance_number=1,
            manufacturer=MANUFACTURER, manufacturer_model_name="MedScan tumour segmentation",
            software_versions=model_version[:64], device_serial_number="none",
            content_label="TUMOUR", omit_empty_frames=per_frame,
            content_description=f"MedScan tumour mask - {NOT_FOR_DIAGNOSTIC_USE}"[:64],
            series_description=f"MedScan tumour SEG - {NOT_FOR_DIAGNOSTIC_USE}")
    except (ValueError, TypeError, AttributeError, KeyError) as err:
        raise PacsError(f"The tumour mask could not be built as a DICOM Segmentation for this "
                        f"source ({err}).", code="bad_source") from err
    if n_frames > 1 and not per_frame:
        for item in seg.PerFrameFunctionalGroupsSequence:
            for der in item.get("DerivationImageSequence", []):
                for src in der.get("SourceImageSequence", []):
                    src.ReferencedFrameNumber = frame + 1
    return seg


def _who(user: dict | None) -> dict:
    if user:
        return {"user_id": user.get("id"), "via": "app"}
    try:
        os_user = getpass.getuser()
    except (KeyError, OSError):
        os_user = "unknown"
    return {"user_id": None, "via": "cli", "os_user": os_user}


def send_objects(client: PacsClient, objects: list[tuple[str, object, str]], *,
                 user: dict | None = None, session=None) -> list[SentObject]:
    """Store ``objects`` — ``(kind, dataset, source SOP Instance UID)`` — in the PACS
    (STOW-RS, one request) and audit each one (``pacs_send``: study UID, kind, new series and
    SOP Instance UIDs, the PACS address) in ``session`` (a ``core.db`` session; with None, a
    session on the configured database). ``user``: the app's user dict (``id``); None for the
    CLI (the OS user is recorded)."""
    if not objects:
        return []
    client.store([ds for _, ds, _ in objects])
    sent = [SentObject(kind=kind, study_uid=str(ds.StudyInstanceUID),
                       series_uid=str(ds.SeriesInstanceUID), sop_uid=str(ds.SOPInstanceUID),
                       sop_class_uid=str(ds.SOPClassUID), source_sop_uid=src)
            for kind, ds, src in objects]
    _audit(sent, user, client.config.display_url, session)
    return sent


def _audit(sent: list[SentObject], user: dict | None, pacs: str, session) -> None:
    from core.db.audit import audit

    who = _who(user)
    user_id = who.pop("user_id")

    def write(s) -> None:
        for obj in sent:
            # key names chosen so that core.db.audit.scrub keeps them (the UIDs are the point)
            audit(s, user_id, "pacs_send", study_uid=obj.study_uid, object=obj.kind,
                  new_series=obj.series_uid, new_sop=obj.sop_uid, source_sop=obj.source_sop_uid,
                  pacs=pacs, **who)

    if session is not None:
        write(session)
        return
    from core.db import init_db, session_scope

    with session_scope(init_db()) as s:
        write(s)
