"""Figures (and other views of a cached result, such as PNG bytes) cached by their inputs, so
a rerun that changes nothing they show does not rebuild them (encoding a 512² panel as PNG
costs tens of milliseconds; a page has several).

``cached_view(key..., build=fn)`` returns what ``fn()`` built the first time a key is seen.
The key must name every input: the cached result's identity (e.g. the upload hash and the
settings it was computed with) and any choice that changes the drawing.
``st.cache_resource`` hands out the same object without copying; ``st.plotly_chart`` only
reads a figure, so sharing one between reruns and sessions is safe.
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import streamlit as st

__all__ = ["cached_view", "token", "digest"]


def token(*parts: Any) -> str:
    """A short digest of ``parts`` (by their ``repr``): a result's identity in figure keys."""
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:20]


def digest(*arrays) -> str:
    """A short digest of arrays by their shape, dtype and bytes (``token`` would see only a
    truncated ``repr``): an image's identity in figure keys."""
    import numpy as np

    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(repr((a.shape, a.dtype.str)).encode())
        h.update(a.tobytes())
    return h.hexdigest()[:24]


@st.cache_resource(max_entries=64, show_spinner=False)
def _figure(key: str, _build: Callable[[], Any]):
    return _build()


def cached_view(*key: Any, build: Callable[[], Any]):
    """The figure (or PNG, or any view of a cached result) for ``key``, built by ``build()``
    on the first call with that key."""
    return _figure(repr(key), build)
