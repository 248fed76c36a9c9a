"""Scans, predictions and super-resolution results.

A scan is identified by the SHA-256 of the uploaded bytes; only its masked summary is stored
(PHI-looking keys are masked again here, belt and braces). Each call also writes an audit row.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.db.audit import audit, scrub
from core.db.errors import NotFound
from core.db.tables import Prediction, Scan, SRResult
from core.db.rows import PredictionView, ScanView, SRResultView

__all__ = ["record_scan", "label_scan", "record_prediction", "record_sr_result", "get_scan",
           "scan_id_for", "scan_predictions", "scan_sr_results", "check_sha256"]

_SHA256 = re.compile(r"[0-9a-f]{64}")
_PNG = b"\x89PNG\r\n\x1a\n"
MAX_DISPLAY_NAME = 255
#: A 128 px PNG of a scan is a few kB to ~40 kB; anything far larger is not a thumbnail.
MAX_THUMBNAIL_BYTES = 256 * 1024


def check_sha256(sha256: str) -> str:
    value = (sha256 or "").strip().lower()
    if not _SHA256.fullmatch(value):
        raise ValueError(f"not a SHA-256 hex digest: {sha256!r}")
    return value


def _scan_view(s: Scan) -> ScanView:
    return ScanView(id=s.id, sha256=s.sha256, summary=dict(s.summary or {}),
                    source_format=s.source_format, modality=s.modality,
                    shape=tuple(s.shape or ()), uploaded_by=s.uploaded_by,
                    created_at=s.created_at, display_name=s.display_name,
                    thumbnail=s.thumbnail)


def _scan(session: Session, sha256: str) -> Scan:
    sha = check_sha256(sha256)
    scan = session.scalar(select(Scan).where(Scan.sha256 == sha))
    if scan is None:
        raise NotFound(f"Scan {sha[:12]}… is not recorded; record_scan() it first.")
    return scan


def scan_id_for(session: Session, sha256: str) -> int:
    return _scan(session, sha256).id


def record_scan(session: Session, sha256: str, summary: dict[str, Any], source_format: str,
                modality: str | None, shape: Sequence[int], user_id: int | None, *,
                display_name: str | None = None, thumbnail: bytes | None = None) -> ScanView:
    """Store a scan once per content hash (later calls return the first row) and audit the
    upload. ``summary`` must be the masked summary; PHI-looking keys are masked anyway.
    ``display_name`` / ``thumbnail``: see :func:`label_scan`."""
    sha = check_sha256(sha256)
    scan = session.scalar(select(Scan).where(Scan.sha256 == sha))
    if scan is None:
        scan = Scan(sha256=sha, summary=scrub(dict(summary or {})),
                    source_format=str(source_format)[:16],
                    modality=None if modality is None else str(modality)[:16],
                    shape=[int(n) for n in shape], uploaded_by=user_id)
        session.add(scan)
        session.flush()
    _label(scan, display_name, thumbnail)
    audit(session, user_id, "upload", scan=sha, format=scan.source_format,
          modality=scan.modality)
    return _scan_view(scan)


def _label(scan: Scan, display_name: str | None, thumbnail: bytes | None) -> None:
    if display_name and not scan.display_name:
        scan.display_name = str(display_name)[:MAX_DISPLAY_NAME]
    if thumbnail and not scan.thumbnail:
        if len(thumbnail) > MAX_THUMBNAIL_BYTES or not thumbnail.startswith(_PNG):
            raise ValueError(f"a thumbnail is a PNG of at most {MAX_THUMBNAIL_BYTES} bytes")
        scan.thumbnail = bytes(thumbnail)


def label_scan(session: Session, sha256: str, *, display_name: str | None = None,
               thumbnail: bytes | None = None) -> ScanView:
    """Give a recorded scan the name and thumbnail people recognise it by, where it has none
    yet (the first upload's name stays, so earlier ratings keep theirs). ``display_name`` must
    already be PHI-masked (the app masks upload names); ``thumbnail`` is a small PNG of the
    displayed pixels (no DICOM header). No audit row: this is not an upload."""
    scan = _scan(session, sha256)
    _label(scan, display_name, thumbnail)
    session.flush()
    return _scan_view(scan)


def get_scan(session: Session, sha256: str) -> ScanView | None:
    scan = session.scalar(select(Scan).where(Scan.sha256 == check_sha256(sha256)))
    return None if scan is None else _scan_view(scan)


def record_prediction(session: Session, *, scan_sha256: str, model_version: str, label: str,
                      probabilities: dict[str, float], calibrated: bool,
                      user_id: int | None = None) -> PredictionView:
    scan = _scan(session, scan_sha256)
    row = Prediction(scan_id=scan.id, model_version=model_version, label=label,
                     probabilities={str(k): float(v) for k, v in probabilities.items()},
                     calibrated=bool(calibrated), user_id=user_id)
    session.add(row)
    session.flush()
    audit(session, user_id, "predict", scan=scan.sha256, model_version=model_version,
          label=label)
    return _pred_view(row, scan.sha256)


def _pred_view(p: Prediction, sha: str) -> PredictionView:
    return PredictionView(id=p.id, scan_sha256=sha, model_version=p.model_version,
                          label=p.label, probabilities=dict(p.probabilities),
                          calibrated=p.calibrated, created_at=p.created_at)


def record_sr_result(session: Session, *, scan_sha256: str, method: str, scale: int, mode: str,
                     model_version: str | None = None, alpha: float | None = None,
                     psnr: float | None = None, ssim: float | None = None,
                     user_id: int | None = None) -> SRResultView:
    """``psnr`` may be ``inf`` (identical images); ``ssim`` is ``None`` when not computed."""
    scan = _scan(session, scan_sha256)
    row = SRResult(scan_id=scan.id, method=method, scale=int(scale), mode=mode,
                   model_version=model_version or None,
                   alpha=None if alpha is None else float(alpha),
                   psnr=None if psnr is None else float(psnr),
                   ssim=None if ssim is None else float(ssim), user_id=user_id)
    session.add(row)
    session.flush()
    audit(session, user_id, "super_resolve", scan=scan.sha256, method=method, scale=int(scale),
          model_version=model_version)
    return _sr_view(row, scan.sha256)


def _sr_view(r: SRResult, sha: str) -> SRResultView:
    return SRResultView(id=r.id, scan_sha256=sha, method=r.method, scale=r.scale, mode=r.mode,
                        model_version=r.model_version, alpha=r.alpha, psnr=r.psnr, ssim=r.ssim,
                        created_at=r.created_at)


def scan_predictions(session: Session, sha256: str) -> list[PredictionView]:
    scan = _scan(session, sha256)
    rows = session.scalars(select(Prediction).where(Prediction.scan_id == scan.id)
                           .order_by(Prediction.id.desc()))
    return [_pred_view(p, scan.sha256) for p in rows]


def scan_sr_results(session: Session, sha256: str) -> list[SRResultView]:
    scan = _scan(session, sha256)
    rows = session.scalars(select(SRResult).where(SRResult.scan_id == scan.id)
                           .order_by(SRResult.id.desc()))
    return [_sr_view(r, scan.sha256) for r in rows]
