"""A few layout tweaks for a reading-room screen (less empty space above the title)."""
from __future__ import annotations

import streamlit as st

__all__ = ["apply_style"]

_CSS = """
<style>
[data-testid="stMainBlockContainer"] { padding-top: 2.5rem; }
</style>
"""


def apply_style() -> None:
    st.html(_CSS)
