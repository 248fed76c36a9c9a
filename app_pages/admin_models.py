"""Model versions (admin): compare the versions' model-card metrics, publish (activate) one."""
from __future__ import annotations

import streamlit as st

from core import registry
from core.errors import MedScanError
from ui import auth, plots
from ui.models import classifier_rows, headline_metrics, slot_of, sr_rows

admin = auth.require_role("admin")
st.title("Model versions")
st.caption("Activating a version publishes it: the Analyze and Super-resolution pages use it "
           "from their next rerun, for every user. Nothing is deleted.")


def _activate_ui(task: str, versions: list[str], active: str | None, key: str,
                 slot: str | None = None) -> None:
    from core.db.audit import audit
    from ui.resources import db

    c1, c2 = st.columns([2, 1], vertical_alignment="bottom")
    choice = c1.selectbox("Version to activate", versions, key=f"{key}_pick",
                          index=versions.index(active) if active in versions else 0)
    if c2.button("Activate", key=f"{key}_activate", type="primary", disabled=choice == active):
        try:
            registry.activate(task, choice, slot=slot)
        except MedScanError as err:
            st.error(str(err))
            return
        with db() as session:
            audit(session, admin["id"], "model_activate", task=task, version=choice,
                  slot=slot, previous=active)
        st.rerun()


tab_clf, tab_sr = st.tabs(["Classifier", "Super-resolution"])
with tab_clf:
    cards = registry.list_versions("classifier")
    if not cards:
        st.info("No classifier versions yet. Train one on the Training page.")
    else:
        active = registry.active_version("classifier")
        rows, metric_names = classifier_rows(cards, active)
        st.dataframe(rows, hide_index=True, key="clf_versions")
        if metric_names:
            st.plotly_chart(plots.version_metrics(rows, metric_names), key="clf_version_chart")
        _activate_ui("classifier", [c["version"] for c in cards], active, "clf")
        chosen = next((c for c in cards if c["version"] == st.session_state.get("clf_pick")),
                      next((c for c in cards if c["version"] == active), cards[0]))
        head = headline_metrics(chosen)
        if head and (head[1].get("reliability") or head[1].get("confusion_matrix")):
            split, m = head
            st.subheader(f"{chosen['version']}: {split} set (n = {m.get('n', '?')})")
            c1, c2 = st.columns(2)
            if m.get("reliability"):
                ci = m.get("ece_ci95")
                ece = m.get("ece_calibrated", m.get("ece"))
                c1.plotly_chart(plots.reliability_diagram(
                    m["reliability"], title=f"Calibration · ECE {ece:.3f}" + (
                        f" (95% CI {ci[0]:.3f}–{ci[1]:.3f})" if isinstance(ci, list) else "")),
                    key="clf_reliability")
            if m.get("confusion_matrix"):
                c2.plotly_chart(plots.confusion_heatmap(m["confusion_matrix"],
                                                        m.get("classes") or chosen["classes"],
                                                        title="Confusion matrix"),
                                key="clf_confusion")
        with st.expander("Caveats of the selected version"):
            for line in chosen.get("caveats") or ["(none listed)"]:
                st.markdown(f"- {line}")
with tab_sr:
    cards = registry.list_versions("sr")
    if not cards:
        st.info("No super-resolution versions yet.")
    slots = sorted({slot_of(c) for c in cards if slot_of(c)})
    for slot in slots:
        in_slot = [c for c in cards if slot_of(c) == slot]
        active = registry.active_version("sr", slot=slot)
        st.subheader(slot.replace("_x", " ×"))
        rows, metric_names = sr_rows(in_slot, active)
        st.dataframe(rows, hide_index=True, key=f"sr_versions_{slot}")
        _activate_ui("sr", [c["version"] for c in in_slot], active, f"sr_{slot}", slot=slot)
