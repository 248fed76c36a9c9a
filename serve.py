"""The MedScan server: ``app.py`` (the Streamlit app) plus the two small HTTP routes that set
and clear the login-session cookie (:mod:`ui.session_cookie`), as one ASGI app.

    streamlit run serve.py          # what ``make run`` does; same options as for app.py
    uvicorn serve:app               # or any ASGI server

``streamlit run app.py`` still works, but then a password login lasts only as long as the
browser tab (there is no route that could set an HTTP-only cookie).
"""
from __future__ import annotations

import streamlit as st
from starlette.middleware import Middleware

from ui.asset_cache import VersionedAssetCache
from ui.session_cookie import routes

# VersionedAssetCache: browsers keep the viewer's versioned script (ui/asset_cache.py).
app = st.App("app.py", routes=routes(), middleware=[Middleware(VersionedAssetCache)])
