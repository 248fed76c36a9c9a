"""Making a draft study's condition images: the ``study_images`` background job
(``python -m core studies generate ID``; the admin page starts it with
``core.jobs.service.start_training_job(session, "study_images", [ID], user)``).

Per case: its pixels (library case or folder file), then :func:`core.sr.compare` in simulate
mode at the study's scale with the SR methods the study compares (their model versions as fixed
at design time, ESRGAN at the study's α); the original condition is the simulate path's ground
truth (cropped to a multiple of the scale), so every condition has the same size. Side by side,
the case's reference is the original, or the low-resolution input enlarged to that size by
pixel repetition (so it looks like what it is). Each image is an 8-bit PNG stored once
(``study_images``, by hash). Work is committed per case, so a failed or cancelled job can
simply be started again: cases already done are skipped. Progress is reported per case.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
from sqlalchemy import Engine

from core.db.errors import StudyError
from core.progress import Progress

__all__ = ["generate_study_images", "case_pixels", "lr_reference"]

TASK = "study_images"


def lr_reference(lr: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """The low-resolution input shown at the condition images' size: each pixel repeated
    (no interpolation, so the reference is the input as it is), cropped/padded to ``shape``."""
    fy, fx = -(-shape[0] // lr.shape[0]), -(-shape[1] // lr.shape[1])
    big = np.repeat(np.repeat(lr, fy, axis=0), fx, axis=1)[: shape[0], : shape[1]]
    return big


def case_pixels(session, case: Mapping, source: Mapping | None) -> np.ndarray:
    """A study case's image as float in [0, 1]: from the case library (``case_id``) or the
    folder the study was designed from. :class:`StudyError` when it is gone."""
    source = dict(source or {})
    sha = case["scan_sha256"]
    if source.get("kind") == "folder":
        rel = (source.get("files") or {}).get(sha)
        if not rel:
            raise StudyError(f"Case {sha[:12]}… has no file in the study's folder.")
        path = Path(source["root"]) / rel
        try:
            data = path.read_bytes()
        except OSError as err:
            raise StudyError(f"Cannot read {path}: {err.strerror or err}") from None
        from core.imaging import load_scan

        return np.asarray(load_scan(data, path.name).pixels, np.float32)
    if case.get("case_id") is None:
        raise StudyError(f"Case {sha[:12]}… is no longer in the case library.")
    try:
        from core.library.cases import case_pixels as library_pixels
    except ImportError as err:   # the case library is not installed
        raise StudyError(f"The case library is not available: {err}") from None
    return np.asarray(library_pixels(session, case["case_id"]), np.float32)


def _load_models(methods, scale: int, versions: Mapping[str, str | None],
                 weights_dir) -> dict:
    from core.sr.upscalers import load_sr_model

    return {m: load_sr_model(m, scale, versions.get(m), weights_dir=weights_dir)
            for m in methods}


def generate_study_images(engine: Engine, study_id: int, *,
                          progress: Callable[[Progress], None] | None = None,
                          models: Mapping | None = None,
                          weights_dir: Path | str | None = None) -> dict:
    """Make every missing image of draft study ``study_id``; returns ``{"cases", "made",
    "skipped"}``. ``models``: method → loaded SR model (tests); default: the registry's
    versions recorded in the design."""
    from core.db import session_scope
    from core.db.studies import (get_study, set_case_reference, set_study_image,
                                 study_case_rows, study_source)
    from core.imaging.export import png_bytes
    from core.sr import compare

    report = progress or (lambda p: None)
    with session_scope(engine) as s:
        study = get_study(s, study_id)
        cases = study_case_rows(s, study_id)
        source = study_source(s, study_id)
    if study.state != "draft":
        raise StudyError(f"Study {study_id} is {study.state}: its images are fixed.")
    scale = study.scale or 4
    methods = sorted({m for c in cases for _, m, _, _ in c["items"] if m != "original"})
    versions = dict(source.get("versions") or {})
    for c in cases:
        for _, m, v, _ in c["items"]:
            versions.setdefault(m, v)
    loaded = dict(models or {})
    todo = [c for c in cases if not all(ready for *_, ready in c["items"])
            or (study.presentation == "side_by_side" and not c["has_reference"])]
    if todo:
        loaded.update(_load_models([m for m in methods if m not in loaded], scale, versions,
                                   weights_dir))
    n = len(cases)
    made = 0
    for step, case in enumerate(cases, start=1):
        if case in todo:
            with session_scope(engine) as s:
                pixels = case_pixels(s, case, source)
            result = compare(pixels, scale=scale, mode="simulate", methods=methods,
                             alpha=study.alpha if study.alpha is not None else 0.8,
                             models=loaded)
            images = {"original": result.hr, **result.outputs}
            with session_scope(engine) as s:
                for item_id, method, _, ready in case["items"]:
                    if not ready:
                        set_study_image(s, item_id, png_bytes(images[method]))
                        made += 1
                if study.presentation == "side_by_side" and not case["has_reference"]:
                    ref = (result.hr if study.reference == "original"
                           else lr_reference(result.lr, result.hr.shape))
                    set_case_reference(s, study_id, case["scan_sha256"], png_bytes(ref))
                    made += 1
        report(Progress(task=TASK, phase="generate", epoch=1, epochs=1, step=step, steps=n,
                        message=f"case {step} of {n}"))
    report(Progress(task=TASK, phase="done", epoch=1, epochs=1, step=n, steps=n,
                    message=f"images ready for study {study_id}"))
    return {"cases": n, "made": made, "skipped": n - len(todo)}
