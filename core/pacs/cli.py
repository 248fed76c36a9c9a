"""PACS commands: ``pacs search``, ``pacs fetch``, ``pacs send-gradcam``, ``pacs send-seg``, and
the ``--pacs-study`` source of ``predict`` (:func:`add_source_args`, :func:`pacs_sources`).

The PACS is ``--url`` or ``MEDSCAN_DICOMWEB_URL``; credentials come from
``MEDSCAN_DICOMWEB_USER`` / ``MEDSCAN_DICOMWEB_PASSWORD`` only (never a command-line argument,
which would end up in shell history and process lists). Errors are one line on stderr, exit 2.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

__all__ = ["register", "add_source_args", "pacs_sources"]

_URL_HELP = "DICOMweb base URL (default $MEDSCAN_DICOMWEB_URL); credentials from " \
            "$MEDSCAN_DICOMWEB_USER / $MEDSCAN_DICOMWEB_PASSWORD"


def register(cmds) -> None:
    pacs = cmds.sub.add_parser(
        "pacs", help="search, retrieve from and send results to a PACS (DICOMweb)",
        description="Work with the hospital's PACS over DICOMweb (QIDO-RS, WADO-RS, STOW-RS).")
    sub = pacs.add_subparsers(dest="pacs_command", metavar="ACTION", required=True)

    s = sub.add_parser("search", help="find studies (identifiers masked in the answer)")
    s.add_argument("--url", default=None, help=_URL_HELP)
    s.add_argument("--patient-id", default=None, metavar="ID")
    s.add_argument("--accession", default=None, metavar="N")
    s.add_argument("--modality", default=None, metavar="MR")
    s.add_argument("--date", default=None, metavar="FROM-TO",
                   help="study date or range: YYYYMMDD, YYYYMMDD-YYYYMMDD, YYYYMMDD- (open end), "
                        "or YYYY-MM-DD..YYYY-MM-DD")
    s.add_argument("--limit", type=int, default=200, help="most studies listed (default 200)")
    s.add_argument("--json", action="store_true", help="print a JSON list")
    s.set_defaults(func=_search)

    f = sub.add_parser("fetch", help="retrieve a study (or one series) into a folder")
    f.add_argument("study_uid", metavar="STUDY_UID")
    f.add_argument("--url", default=None, help=_URL_HELP)
    f.add_argument("--series", default=None, metavar="UID", help="only this series")
    f.add_argument("--out", required=True, metavar="DIR",
                   help="written as DIR/<SeriesInstanceUID>/<SOPInstanceUID>.dcm")
    f.add_argument("--json", action="store_true")
    f.set_defaults(func=_fetch)

    _add_send_parser(sub, "send-gradcam", _send_gradcam,
                     "store the Grad-CAM Secondary Capture of every instance of a study in the PACS",
                     "default: the active one")
    _add_send_parser(sub, "send-seg", _send_seg,
                     "store the tumour mask of every instance of a study as a DICOM Segmentation "
                     "(needs a segmentation model)",
                     "segmentation version (default: the active one)")


def _add_send_parser(sub, name: str, func, help_text: str, model_help: str) -> None:
    """The send commands share their arguments: study, PACS, series, model, audit user."""
    p = sub.add_parser(name, help=help_text)
    p.add_argument("study_uid", metavar="STUDY_UID")
    p.add_argument("--url", default=None, help=_URL_HELP)
    p.add_argument("--series", default=None, metavar="UID", help="only this series")
    p.add_argument("--model", default=None, metavar="VERSION", help=model_help)
    p.add_argument("--user", default=None, help="user name recorded in the audit log")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=func)


def add_source_args(parser: argparse.ArgumentParser) -> None:
    """``--pacs-study`` / ``--url`` / ``--series`` on a command that reads scans (``predict``)."""
    parser.add_argument("--pacs-study", default=None, metavar="STUDY_UID",
                        help="read the instances of this study from the PACS instead of files")
    parser.add_argument("--url", default=None, help=_URL_HELP + " (with --pacs-study)")
    parser.add_argument("--series", default=None, metavar="UID",
                        help="with --pacs-study: only this series")


def _client(args):
    from core.pacs.client import PacsClient, config_from_env

    return PacsClient(config_from_env(args.url))


#: SOP classes that are not images to analyse: Segmentation, structured reports (88.x),
#: presentation states (11.x), key-object selection.
_NOT_IMAGES = ("1.2.840.10008.5.1.4.1.1.66.4", "1.2.840.10008.5.1.4.1.1.88.",
               "1.2.840.10008.5.1.4.1.1.11.", "1.2.840.10008.5.1.4.1.1.104.")


def _fetch_analysable(client, study_uid: str, series_uid: str | None, progress=None):
    """Retrieve the study's instances that are images and not MedScan's own results (the
    Grad-CAM captures and masks sent back earlier)."""
    from core.pacs.send import is_medscan_result, read_source

    todo = [i.sop_uid for i in client.instances(study_uid, series_uid)
            if not i.sop_class_uid.startswith(_NOT_IMAGES)]
    if not todo:
        from core.pacs.client import PacsError

        raise PacsError("That study holds no images to analyse.", code="not_found")
    return [(inst, data) for inst, data in client.fetch(study_uid, series_uid=series_uid,
                                                        sop_uids=todo, progress=progress)
            if not is_medscan_result(read_source(data))]


def pacs_sources(args) -> list[tuple[dict, bytes]]:
    """The image instances of ``--pacs-study`` as ``(identifying fields, DICOM bytes)``: the
    fields (study, series and SOP Instance UIDs) head each result entry, as ``file`` does for
    files."""
    return [({"study_uid": inst.study_uid, "series_uid": inst.series_uid,
              "sop_instance_uid": inst.sop_uid}, data)
            for inst, data in _fetch_analysable(_client(args), args.pacs_study, args.series)]


def _search(args) -> int:
    from core.pacs.client import parse_date_range

    date = parse_date_range(args.date)
    studies = _client(args).search_studies(patient_id=args.patient_id, accession=args.accession,
                                           modality=args.modality, date=date, limit=args.limit)
    if args.json:
        print(json.dumps([s.to_dict() for s in studies]))
    elif not studies:
        print("no studies match")
    else:
        for s in studies:
            print(f"{s.study_uid}  {s.label}")
    return 0


def _progress(args):
    if args.json:
        return None
    return lambda done, total: print(f"\rretrieved {done} of {total}", end="" if done < total
                                     else "\n", file=sys.stderr, flush=True)


def _fetch(args) -> int:
    out = Path(args.out)
    got = _client(args).fetch(args.study_uid, series_uid=args.series, progress=_progress(args))
    written = []
    for inst, data in got:
        path = out / inst.series_uid / f"{inst.sop_uid}.dcm"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        written.append({**inst.to_dict(), "path": str(path), "bytes": len(data)})
    if args.json:
        print(json.dumps(written))
    else:
        print(f"{len(written)} instance(s) written under {out}")
    return 0


def _audit_user(name: str | None) -> dict | None:
    """The app user ``name`` (for the audit row), or None (the OS user is recorded)."""
    if not name:
        return None
    from sqlalchemy import select

    from core.db import init_db, session_scope
    from core.db.tables import User
    from core.errors import MedScanError

    with session_scope(init_db()) as s:
        user = s.scalar(select(User).where(User.username == name))
        if user is None:
            raise MedScanError(f"No user {name!r} in the database (--user).")
        return {"id": user.id, "name": user.username}


def _each_scan(args, client):
    """``(instance, bytes, scan)`` for every instance of the study; unreadable ones (e.g. an
    SR or a SEG already sent) as ``(instance, bytes, ScanError)``."""
    from core.errors import ScanError
    from core.imaging import load_scan

    for inst, data in _fetch_analysable(client, args.study_uid, args.series, _progress(args)):
        try:
            yield inst, data, load_scan(data)
        except ScanError as err:
            yield inst, data, err


def _print_sent(args, rows: list[dict], sent) -> int:
    by_source = {o.source_sop_uid: o for o in sent}
    for r in rows:
        obj = by_source.get(r["source_sop_uid"])
        if obj is not None:
            r.update(sop_instance_uid=obj.sop_uid, series_instance_uid=obj.series_uid)
    if args.json:
        print(json.dumps(rows))
    else:
        for r in rows:
            print(f"{r['source_sop_uid']}: " + (f"error: {r['error']}" if "error" in r else
                                                f"sent {r['sop_instance_uid']}"))
    return 1 if any("error" in r for r in rows) else 0


def _send_gradcam(args) -> int:
    import highdicom as hd

    from core.classifier.inference import Classifier
    from core.pacs.send import (gradcam_overlay, gradcam_secondary_capture, read_source,
                                send_objects)

    user = _audit_user(args.user)
    client = _client(args)
    clf = Classifier.load(args.model)
    calibrated = bool(clf.card.get("calibration"))
    series_uid, objects, rows = hd.UID(), [], []
    for inst, data, scan in _each_scan(args, client):
        if isinstance(scan, Exception):
            rows.append({"source_sop_uid": inst.sop_uid, "error": str(scan),
                         "code": getattr(scan, "code", "error")})
            continue
        pred, heatmap = clf.explain(scan.pixels)
        ds = gradcam_secondary_capture(
            read_source(data), gradcam_overlay(scan, heatmap), label=pred.label,
            probability=pred.confidence, model_version=clf.version, calibrated=calibrated,
            frame_index=scan.frame_index, series_uid=series_uid,
            instance_number=len(objects) + 1)
        objects.append(("secondary_capture", ds, inst.sop_uid))
        rows.append({"source_sop_uid": inst.sop_uid, "label": pred.label,
                     "probability": pred.confidence, "model_version": clf.version})
    sent = send_objects(client, objects, user=user)
    return _print_sent(args, rows, sent)


def _send_seg(args) -> int:
    from core import registry
    from core.errors import ModelNotFoundError
    from core.pacs.send import read_source, segmentation_object, send_objects
    from core.segmentation import TASK
    from core.segmentation.inference import Segmenter

    if args.model is None and registry.active_version(TASK) is None:
        raise ModelNotFoundError("No segmentation model is active, so there is no tumour mask "
                                 "to send.")
    user = _audit_user(args.user)
    client = _client(args)
    model = Segmenter.load(args.model)
    objects, rows = [], []
    for inst, data, scan in _each_scan(args, client):
        if isinstance(scan, Exception):
            rows.append({"source_sop_uid": inst.sop_uid, "error": str(scan),
                         "code": getattr(scan, "code", "error")})
            continue
        seg = model.segment_scan(scan)
        ds = segmentation_object(read_source(data), seg.mask, model_version=model.version,
                                 frame_index=scan.frame_index)
        objects.append(("segmentation", ds, inst.sop_uid))
        rows.append({"source_sop_uid": inst.sop_uid, "tumour_pixels": seg.tumour_pixels,
                     "model_version": model.version})
    sent = send_objects(client, objects, user=user)
    return _print_sent(args, rows, sent)
