"""The one table of super-resolution methods: names, what people read for each, which have a
model and with which architecture, and the registry slot of a method at a scale. Imports nothing
of the project but its errors, so the storage layer can label rated views (``core.db.views``)
without importing model code."""
from __future__ import annotations

from core.errors import MedScanError

__all__ = ["SR_METHODS", "METHOD_LABELS", "MODEL_METHODS", "ARCHITECTURE_BY_METHOD", "slot_name",
           "REFERENCE_METHODS"]

SR_METHODS = ("bicubic", "srcnn", "rrdb_psnr", "esrgan", "zero_filled")
#: Upscalers without weights: bicubic (the reference under bicubic degradation) and zero-filled
#: k-space (sinc) interpolation (the reference under k-space degradation).
REFERENCE_METHODS = ("bicubic", "zero_filled")
#: What people read for each method (menus, tables, My ratings, the export's ``view`` text).
METHOD_LABELS = {"bicubic": "Bicubic", "srcnn": "SRCNN", "rrdb_psnr": "RRDB (PSNR)",
                 "esrgan": "ESRGAN", "zero_filled": "Zero-filled (sinc)"}
MODEL_METHODS = ("srcnn", "rrdb_psnr", "esrgan")
ARCHITECTURE_BY_METHOD = {"srcnn": "srcnn", "rrdb_psnr": "rrdbnet", "esrgan": "rrdbnet"}


def slot_name(method: str, scale: int) -> str:
    """Registry slot holding the active model of ``method`` at ``scale``, e.g. ``rrdb_psnr_x4``."""
    if method not in MODEL_METHODS:
        raise MedScanError(f"Unknown SR method {method!r}; expected one of {', '.join(MODEL_METHODS)}.")
    return f"{method}_x{int(scale)}"
