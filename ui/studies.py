"""Preparing reader-study items: the PNG of each (scan, view)."""
from __future__ import annotations

from ui import upload_results
from ui.images import png_bytes
from core.sr.methods import MODEL_METHODS
from ui.sr import METHOD_LABELS

__all__ = ["VIEWS", "build_study_images", "cond_label", "state_badge"]

VIEWS = {"original": "Original scan",
         **{m: f"{METHOD_LABELS[m]} (restored from the shrunk scan)"
            for m in ("bicubic", *MODEL_METHODS)}}


def cond_label(condition: str | None) -> str:
    """A condition (``method`` or ``method@version``) as people read it (admin pages only)."""
    from core.db.rows import view_label

    if condition is None:
        return "—"
    method, _, version = str(condition).partition("@")
    return view_label(method) + (f" ({version})" if version else "")


def state_badge(state: str) -> str:
    """A study's state as a coloured Markdown badge."""
    colour = {"draft": "gray", "open": "green", "closed": "orange"}.get(state, "gray")
    return f":{colour}-badge[{state}]"


def build_study_images(picked: list, views: list[str], scale: int,
                       alpha: float = 0.8) -> list[tuple[str, str, str | None, bytes]]:
    """``(scan_sha256, view, model_version, png)`` for every scan × view. SR views use the
    active models, through the same cache as the Super-resolution page."""
    from core.sr import available_methods

    available = available_methods(scale)
    methods = tuple(["bicubic"] + [v for v in views if v not in ("original", "bicubic")
                                   and available.get(v)])
    missing = [v for v in views if v not in ("original", "bicubic") and not available.get(v)]
    if missing:
        from core.errors import MedScanError

        raise MedScanError(f"No active ×{scale} model for: {', '.join(missing)}.")
    items = []
    sr_views = [v for v in views if v != "original"]
    for p in picked:
        original = p.scan.pixels
        if sr_views:
            result = upload_results.sr_compare(p.key, scale, "simulate", methods, alpha,
                                       tuple((m, available.get(m)) for m in methods),
                                       upload_results.weights_key(), _pixels=p.scan.pixels)
            original = result.hr  # simulate mode crops to a multiple of the scale: same size
            for v in sr_views:
                items.append((p.scan.sha256, v, result.versions.get(v),
                              png_bytes(result.outputs[v])))
        if "original" in views:
            items.append((p.scan.sha256, "original", None, png_bytes(original)))
    return items
