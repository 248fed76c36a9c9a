"""MedScan entry point: page routing and the login gate (``streamlit run app.py``).

Visitors who are not logged in get only the login page (or, on a fresh install, the one-time
"create the first administrator" form). Logged-in users get the pages their role may use; admin
pages also re-check the role themselves, so opening one by URL is refused too.

The page scripts live in ``app_pages/``, deliberately not ``pages/``: Streamlit treats a
``pages/`` folder next to the entry script as a legacy (v1) multipage app until the first
``st.navigation`` call, so on a fresh server process the first request would list and run every
file there — admin pages included — without this gate (and ``AppTest`` resets that flag on every
run, so it would run a page without ``app.py`` from the second run on).
"""
from __future__ import annotations

import streamlit as st

from ui import auth, scratch_uploads
from ui.streamlit_runtime import keep_keras_state
from ui.style import apply_style

keep_keras_state()     # no Keras reset + gc after every rerun (ui/streamlit_runtime.py)

st.set_page_config(page_title="MedScan", page_icon=":material/radiology:", layout="wide")
apply_style()

# Every page's address, also while logged out: opening or reloading /super_resolution then
# shows the login form there (not "Page not found"), and logging in stays on that page.
PAGE_PATHS = ("analyze", "super_resolution", "my_ratings", "reader_study", "admin_training",
              "admin_models", "admin_users", "admin_audit", "admin_studies", "admin_export",
              "admin_library")

user = auth.refresh_user()
if user is None:
    st.navigation([st.Page(auth.login_page, title="Log in", icon=":material/login:",
                           url_path="login", default=True)]
                  + [st.Page(auth.login_page, title="Log in", url_path=path)
                     for path in PAGE_PATHS], position="hidden").run()
    st.stop()

pages = {
    "Scans": [
        st.Page("app_pages/analyze.py", title="Analyze", icon=":material/radiology:", default=True),
        st.Page("app_pages/super_resolution.py", title="Super-resolution",
                icon=":material/high_quality:"),
        st.Page("app_pages/my_ratings.py", title="My ratings", icon=":material/star_rate:"),
        st.Page("app_pages/reader_study.py", title="Reader study", icon=":material/checklist:"),
    ],
}
if user["role"] == "admin":
    pages["Administration"] = [
        st.Page("app_pages/admin_training.py", title="Training", icon=":material/model_training:"),
        st.Page("app_pages/admin_models.py", title="Model versions", icon=":material/compare:"),
        st.Page("app_pages/admin_users.py", title="Users", icon=":material/group:"),
        st.Page("app_pages/admin_audit.py", title="Audit log", icon=":material/history:"),
        st.Page("app_pages/admin_studies.py", title="Reader studies", icon=":material/assignment:"),
        st.Page("app_pages/admin_export.py", title="Export ratings", icon=":material/download:"),
        st.Page("app_pages/admin_library.py", title="Case library",
                icon=":material/photo_library:"),
    ]

auth.sidebar_user_ui(user)
scratch_uploads.restore_once(user)   # the uploads of this login, after a reload
st.navigation(pages).run()
