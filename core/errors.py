"""Typed errors whose messages a clinician can read. Never show a raw traceback instead."""
from __future__ import annotations

__all__ = ["MedScanError", "ScanError", "ModelCardError", "ModelNotFoundError"]


class MedScanError(Exception):
    """Base class: ``str(err)`` is a one-line message meant for the user."""


class ScanError(MedScanError):
    """An uploaded file could not be read as a scan.

    ``code`` is a stable machine-readable reason (e.g. ``"empty"``, ``"truncated"``,
    ``"no_pixel_data"``, ``"decoder_missing"``, ``"too_large"``, ``"unknown_format"``).
    """

    def __init__(self, message: str, code: str = "invalid") -> None:
        super().__init__(message)
        self.code = code


class ModelCardError(MedScanError):
    """A model version on disk is missing, incomplete or inconsistent with its card."""


class ModelNotFoundError(ModelCardError):
    """No such task/version in the registry (or no active version)."""
