"""Frozen dataclass views returned by the ``core.db`` API: plain values, safe after the session
closes (no lazy loading, no ``DetachedInstanceError``) and cheap to cache in a page."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = ["UserView", "ScanView", "PredictionView", "SRResultView", "RatingView",
           "describe_view", "view_label", "VIEW_LABELS", "StudyView", "StudyItemView",
           "StudyProgress", "AuditView", "JobView", "ProgressPoint", "CaseView",
           "ActiveModelView"]


@dataclass(frozen=True)
class UserView:
    id: int
    username: str
    role: str                       # "radiologist" | "admin"
    active: bool
    created_at: datetime
    last_login_at: datetime | None = None
    locked_until: datetime | None = None
    sso_email: str | None = None    # lower-cased SSO (OIDC) e-mail; None = no SSO

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @classmethod
    def of(cls, user: Any) -> UserView:
        """The view of a ``core.db.tables.User`` row (detached: safe after the session)."""
        return cls(id=user.id, username=user.username, role=user.role, active=user.active,
                   created_at=user.created_at, last_login_at=user.last_login_at,
                   locked_until=user.locked_until, sso_email=user.sso_email)


@dataclass(frozen=True)
class ScanView:
    id: int
    sha256: str
    summary: dict[str, Any]
    source_format: str
    modality: str | None
    shape: tuple[int, ...]
    uploaded_by: int | None
    created_at: datetime
    display_name: str | None = None     # PHI-masked file name; None before revision 0004
    thumbnail: bytes | None = None      # ≤128 px PNG of the displayed image


@dataclass(frozen=True)
class PredictionView:
    id: int
    scan_sha256: str
    model_version: str
    label: str
    probabilities: dict[str, float]
    calibrated: bool
    created_at: datetime


@dataclass(frozen=True)
class SRResultView:
    id: int
    scan_sha256: str
    method: str
    scale: int
    mode: str
    model_version: str | None
    alpha: float | None
    psnr: float | None
    ssim: float | None
    created_at: datetime


@dataclass(frozen=True)
class RatingView:
    id: int
    reader_id: int
    scan_sha256: str
    method: str
    model_version: str | None
    study_id: int | None
    image_quality: int
    diagnostic_usefulness: int
    comment: str | None
    created_at: datetime
    updated_at: datetime
    # The view rated (None: not applicable, or rated before revision 0004 recorded it)
    frame: int | None = None            # 0-based frame of a multi-frame file
    scale: int | None = None            # super-resolution factor
    mode: str | None = None             # "simulate" | "enhance"
    alpha: float | None = None          # ESRGAN interpolation weight
    scan_name: str | None = None        # the scan's display name (PHI-masked file name)
    thumbnail: bytes | None = None      # the scan's ≤128 px PNG (only where asked for)

    @property
    def view(self) -> str:
        """What was rated, in words: ``"ESRGAN ×4, Simulate mode, α 0.80, model v1, frame 3"``."""
        return describe_view(self.method, model_version=self.model_version, frame=self.frame,
                             scale=self.scale, mode=self.mode, alpha=self.alpha)


#: Rated views that are not super-resolution methods (those take ``core.sr.METHOD_LABELS``).
VIEW_LABELS = {"original": "Original scan", "gradcam": "Grad-CAM overlay",
               "blinded": "Reader-study image (blinded)"}


def view_label(method: str) -> str:
    """The human name of a rated view/method: ``"esrgan"`` → ``"ESRGAN"``, ``"original"`` →
    ``"Original scan"``; an unknown name is shown as it is."""
    from core.sr.methods import METHOD_LABELS   # the one table of SR methods (no model code)

    return VIEW_LABELS.get(method) or METHOD_LABELS.get(method) or method


def describe_view(method: str, *, model_version: str | None = None, frame: int | None = None,
                  scale: int | None = None, mode: str | None = None,
                  alpha: float | None = None) -> str:
    """One line naming a rated view in words (the same words on the rating form, My ratings and
    the export's ``view`` column): ``"ESRGAN ×4, Simulate mode, α 0.80, model v1, frame 3"``."""
    head = " ".join([view_label(method), *([f"×{scale}"] if scale else [])])
    parts = [head, *([f"{mode.capitalize()} mode"] if mode else []),
             *([f"α {alpha:.2f}"] if alpha is not None else []),
             *([f"model {model_version}"] if model_version else []),
             *([f"frame {frame + 1}"] if frame is not None else [])]
    return ", ".join(parts)


@dataclass(frozen=True)
class StudyView:
    id: int
    name: str
    blinded: bool
    seed: int
    active: bool
    n_items: int
    created_by: str | None          # username
    created_at: datetime


@dataclass(frozen=True)
class StudyItemView:
    """One image of a study as one reader sees it, in that reader's order.

    When the study is blinded, ``method``, ``model_version`` and ``scan_sha256`` are ``None`` and
    ``label`` is opaque ("Image 3 of 12"). Fetch pixels with
    ``studies.study_image_bytes(session, item_id)``; rate with ``studies.rate_study_item``.
    """
    item_id: int
    study_id: int
    index: int                      # 1-based position in this reader's order
    total: int
    label: str
    blinded: bool
    method: str | None
    model_version: str | None
    scan_sha256: str | None
    has_image: bool
    rated: bool
    image_quality: int | None = None          # this reader's own rating, if any
    diagnostic_usefulness: int | None = None
    comment: str | None = None


@dataclass(frozen=True)
class StudyProgress:
    study_id: int
    reader_id: int
    rated: int
    total: int

    @property
    def fraction(self) -> float:
        return self.rated / self.total if self.total else 1.0

    @property
    def done(self) -> bool:
        return self.rated >= self.total


@dataclass(frozen=True)
class AuditView:
    id: int
    at: datetime
    user_id: int | None
    username: str | None
    action: str
    detail: dict[str, Any]


@dataclass(frozen=True)
class JobView:
    id: int
    kind: str
    args: list[str]
    status: str                     # queued | running | succeeded | failed | cancelled
    user_id: int | None
    pid: int | None
    host: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime | None
    progress: dict[str, Any] | None  # last Progress.to_dict()
    fraction: float
    result_version: str | None
    error: str | None
    log_path: str | None

    @property
    def finished(self) -> bool:
        return self.status in ("succeeded", "failed", "cancelled")


@dataclass(frozen=True)
class ProgressPoint:
    at: datetime
    phase: str
    epoch: int
    epochs: int
    step: int
    steps: int
    loss: float | None
    fraction: float
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class CaseView:
    """One case of the library (``core.library``): what describes the stored pixels."""

    id: int
    sha256: str
    storage_key: str
    width: int
    height: int
    bit_depth: int
    label: str | None
    label_source: str | None
    modality: str | None
    body_part: str | None
    source: str
    source_path: str | None
    added_by: int | None
    created_at: datetime
    thumbnail: bytes | None = field(default=None, repr=False)


@dataclass(frozen=True)
class ActiveModelView:
    """One row of ``registry_state``: the active version of a task's slot (``slot`` None: the
    default slot), how many times it was written (``generation``), when and by whom."""
    task: str
    slot: str | None
    version: str
    generation: int
    updated_at: datetime
    previous: str | None = None
    action: str = "activate"
    user_id: int | None = None
    username: str | None = None
