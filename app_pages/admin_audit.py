"""Audit log (admin): who did what, when; filter by user, action and date range; CSV export."""
from __future__ import annotations

from datetime import timedelta

import streamlit as st

from ui import auth
from ui.engine_and_models import db

admin = auth.require_role("admin")
st.title("Audit log")

from core.db.audit import audit_actions, audit_csv, detail_text, search_audit  # noqa: E402
from core.db.auth import list_users  # noqa: E402
from core.db.tables import utcnow  # noqa: E402

LIMIT = 5000

with db() as session:
    users = list_users(session)
    actions = audit_actions(session)
today = utcnow().date()

c_user, c_action, c_dates = st.columns([1, 2, 1.4])
names = ["Everyone", *(u.username for u in users)]
who = c_user.selectbox("User", names, key="audit_user")
chosen = c_action.multiselect("Actions", actions, key="audit_actions",
                              placeholder="All actions")
span = c_dates.date_input("Dates (UTC)", value=(today - timedelta(days=7), today),
                          max_value=today, key="audit_dates", format="YYYY-MM-DD")
since, until = (tuple(span) + (None, None))[:2] if isinstance(span, (tuple, list)) \
    else (span, span)
user_id = next((u.id for u in users if u.username == who), None)

with db() as session:
    rows = search_audit(session, user_id=user_id, actions=chosen or None, since=since,
                        until=until or since, limit=LIMIT)

shown = f"{len(rows)} event{'s' if len(rows) != 1 else ''}"
st.caption(shown + (f" (the newest {LIMIT}; narrow the filter to see older ones)"
                    if len(rows) >= LIMIT else "") + ". Times are UTC; details never hold "
           "patient data.")
if rows:
    picked = st.dataframe(
        [{"time (UTC)": e.at.strftime("%Y-%m-%d %H:%M:%S"), "user": e.username or "—",
          "action": e.action, "detail": detail_text(e.detail)} for e in rows],
        hide_index=True, key="audit_log_table", on_select="rerun", selection_mode="single-row",
        column_config={"time (UTC)": st.column_config.TextColumn(width=145),
                       "user": st.column_config.TextColumn(width=80),
                       "action": st.column_config.TextColumn(width=125),
                       "detail": st.column_config.TextColumn(width="large")})
    st.caption("Hashes are shortened to 12 characters here; select a row to read its whole "
               "detail. The CSV keeps every value in full.")
    for i in picked.selection.rows if picked else []:
        e = rows[i]
        with st.container(border=True):
            st.markdown(f"**{e.action}** · {e.username or '—'} · "
                        f"{e.at:%Y-%m-%d %H:%M:%S} UTC")
            st.json(e.detail, expanded=True)
    st.download_button("Download CSV", audit_csv(rows), icon=":material/download:",
                       file_name=f"medscan-audit-{since or 'all'}-{until or since or 'all'}.csv",
                       mime="text/csv", key="audit_csv", on_click="ignore")
else:
    st.info("No events match this filter.", icon=":material/filter_alt_off:")
