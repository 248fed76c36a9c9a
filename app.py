"""MedScan entry point (placeholder until the clinician pages land): lists installed models."""
from __future__ import annotations

import streamlit as st

from core import registry

st.set_page_config(page_title="MedScan", page_icon=":material/radiology:", layout="wide")
st.title("MedScan")
for task in registry.TASKS:
    versions = registry.list_versions(task)
    active = registry.active_version(task)
    st.write(f"**{task}**: {len(versions)} version(s); active: {active or 'none'}")
