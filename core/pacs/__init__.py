"""Working with the hospital's PACS over DICOMweb: search (QIDO-RS), retrieve (WADO-RS) and send
results back (STOW-RS) as DICOM objects built with highdicom.

- :mod:`core.pacs.client`: :class:`PacsClient`, :class:`PacsConfig`, :class:`PacsError`
  (configuration from ``MEDSCAN_DICOMWEB_URL`` / ``_USER`` / ``_PASSWORD``).
- :mod:`core.pacs.send`: the derived objects (Grad-CAM Secondary Capture, tumour DICOM
  Segmentation) and :func:`send_objects` (store + audit).
- :mod:`core.pacs.cli`: ``python -m core pacs search | fetch | send-gradcam | send-seg``.

Retrieved instances are loaded with :func:`core.imaging.load_scan`, like uploads.
"""
from __future__ import annotations

from core.pacs.client import (InstanceSummary, PacsClient, PacsConfig, PacsError,
                              SeriesSummary, StudySummary, config_from_env, parse_date_range)

__all__ = ["PacsClient", "PacsConfig", "PacsError", "StudySummary", "SeriesSummary",
           "InstanceSummary", "config_from_env", "parse_date_range"]
