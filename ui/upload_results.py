"""Results that depend on uploaded bytes, cached with ``st.cache_data`` keyed by the upload's
SHA-256 (the bytes and pixel arrays are passed as ``_``-prefixed, i.e. unhashed, arguments), so
a rerun — a slider moved, a page switched back to — never decodes or runs a model again.

The model version and weights folder are part of every key: publishing a new model version
gives new results instead of stale ones.

Decoded scans use ``st.cache_resource`` instead: ``st.cache_data`` hands out a fresh unpickled
copy on every call, and the pages read every kept upload on every rerun, so a zipped CT series
(hundreds of slices) would be copied on each slider move. A ``Scan`` is immutable (frozen
dataclass, read-only arrays), so sharing one object is safe; the key is still the hash.
"""
from __future__ import annotations

import numpy as np
import streamlit as st

from core import config
from ui import engine_and_models

__all__ = ["read_upload", "load_frame", "explain_all", "sr_compare"]


@st.cache_resource(show_spinner="Reading the upload…", max_entries=64, ttl=3600)
def read_upload(sha: str, name: str, _data: bytes) -> list:
    """Every scan in one uploaded file (a zip of a DICOM series gives several); see
    ``core.imaging.load_uploads``. Unreadable members come back as errors, not exceptions."""
    from core.imaging import load_uploads

    return load_uploads(name, _data)


@st.cache_resource(show_spinner="Decoding the frame…", max_entries=64, ttl=3600)
def load_frame(sha: str, name: str, frame: int, _data: bytes):
    """One frame of a multi-frame file (the default frame comes with :func:`read_upload`)."""
    from core.imaging import load_scan

    return load_scan(_data, filename=name, frame=frame)


@st.cache_data(show_spinner=False, max_entries=256)
def explain_all(key: str, version: str, weights_dir: str, _pixels: np.ndarray):
    """``(Prediction, {(method, class): heatmap})`` for the image identified by ``key``: every
    class by every CAM method from one forward pass, so that the Analyze picture can switch
    between them in the browser."""
    clf = engine_and_models.classifier(version)
    return clf.explain_all(_pixels)


@st.cache_data(show_spinner=False, max_entries=64)
def sr_compare(key: str, scale: int, mode: str, methods: tuple[str, ...], alpha: float,
               versions: tuple[tuple[str, str | None], ...], weights_dir: str,
               _pixels: np.ndarray, degradation: str = "bicubic"):
    """``core.sr.compare`` with the cached SR models; keyed by image hash, settings (the
    simulate mode's ``degradation`` included) and the model versions used."""
    from core.sr import compare

    models = {m: engine_and_models.sr_model(m, scale, v) for m, v in versions if v and m in methods}
    return compare(_pixels, scale=scale, mode=mode, methods=methods, alpha=alpha, models=models,
                   degradation=degradation)


def weights_key() -> str:
    return str(config.weights_dir())
