"""Model versions (admin): versions with their status (active / candidate / shipped), their
figures on one fixed evaluation set side by side, activation behind a confirmation that says
what changes, and one-click, audited rollback."""
from __future__ import annotations

import streamlit as st

from core import registry
from core.errors import MedScanError
from ui import auth, plots
from ui.version_tables import (CLASSIFIER_COLUMNS, EVAL_METRICS, METRIC_LABELS, SR_FORMATS,
                               change_summary, classifier_rows, eval_sets, headline_metrics,
                               metric_label, recipe_line, segmentation_rows, slot_of, sr_rows)
from ui.engine_and_models import db
from ui.retrieval import queue_embeddings_if_needed

admin = auth.require_role("admin")
st.title("Model versions")
st.caption("The active version serves every user from their next rerun. Versions trained in the "
           "app are published as candidates in the data directory's registry; shipped versions "
           "(weights/) are read-only. Nothing is deleted.")
if flash := st.session_state.pop("models_flash", None):
    text, overridden = flash if isinstance(flash, tuple) else (flash, False)
    if overridden:   # activated although the comparison warned: not a green "all good"
        st.warning(text, icon=":material/warning:")
    else:
        st.success(text, icon=":material/check_circle:")
if note := st.session_state.pop("models_library_note", None):
    st.info(note, icon=":material/photo_library:")


@st.cache_data(ttl=300, show_spinner=False)
def _training_overlap(version: str, data: str | None, fingerprint: str | None) -> str | None:
    from core.classifier.train import training_overlap

    try:
        card = registry.load_card("classifier", version)
    except MedScanError:
        return None
    return training_overlap(card, data, fingerprint)


def _overlap_warnings(versions, data: str | None, fingerprint: str | None) -> None:
    """A warning for each version whose training data the evaluation set is, or looks like."""
    for v in dict.fromkeys(x for x in versions if x):
        if why := _training_overlap(v, data, fingerprint):
            st.warning(f"**{v}** may have been trained on these images: {why}. Its figures "
                       "here are not a held-out test; evaluate it on images it never saw.",
                       icon=":material/join_inner:")


def _activate_ui(task: str, versions: list[str], active: str | None, key: str,
                 status: dict[str, str], slot: str | None = None) -> None:
    """Pick a version, see what changes on the shared evaluation set, confirm, activate;
    roll back to the previous version in one action. Both audited."""
    choice = st.selectbox("Version to activate", versions, key=f"{key}_pick",
                          index=versions.index(active) if active in versions else 0)
    if choice == active:
        st.info(f"{choice} is the active version.", icon=":material/check:")
    else:
        cmp = registry.compare_on_eval_set(task, choice, active)
        st.markdown(f"**Activating changes {active or 'nothing'} → {choice}**")
        if cmp["set"]:
            s = cmp["set"]
            st.dataframe([{"metric": metric_label(r["metric"]),
                           f"{active} (active)": f"{r['reference']:.4f}",
                           f"{choice}": f"{r['candidate']:.4f}",
                           "change": f"{r['delta']:+.4f}" + (
                               "" if r["better"] is None else " better" if r["better"]
                               else " WORSE")} for r in cmp["rows"]],
                         hide_index=True, key=f"{key}_deltas")
            st.caption(f"Both on the same evaluation set: {s['data']} ({s['n']} images, "
                       f"fingerprint {s['fingerprint'][:23]}…).")
            if task == "classifier":
                _overlap_warnings((active, choice), s.get("data"), s.get("fingerprint"))
        if task == "classifier":
            for w in cmp["warnings"]:
                st.error(w, icon=":material/warning:")
        confirm = st.checkbox(f"Yes, make {choice} the active {task} model for every user"
                              + (" despite the warnings above" if task == "classifier"
                                 and cmp["worse"] else ""), key=f"{key}_confirm")
        if st.button(f"Activate {choice}", key=f"{key}_activate", type="primary",
                     disabled=not confirm):
            deltas = {r["metric"]: round(r["delta"], 6) for r in cmp["rows"]}
            try:
                with db() as session:
                    previous = registry.activate_audited(
                        session, task, choice, slot=slot, user_id=admin["id"],
                        user=admin["name"], deltas=deltas,
                        eval_set=(cmp["set"] or {}).get("fingerprint"),
                        warnings=cmp["warnings"] if task == "classifier" else [])
            except MedScanError as err:
                st.error(str(err))
                return
            st.session_state["models_flash"] = (
                change_summary(cmp, previous), bool(task == "classifier" and cmp["warnings"]))
            if task == "classifier":
                st.session_state["models_library_note"] = queue_embeddings_if_needed(choice,
                                                                                     admin)
            st.rerun()
    previous = registry.previous_version(task, slot=slot)
    if previous and st.button(f"Roll back to {previous}", key=f"{key}_rollback",
                              icon=":material/undo:",
                              help=f"Re-activate {previous}, the version active before "
                                   f"{active} (audited)."):
        try:
            with db() as session:
                now, before = registry.rollback(session, task, slot=slot, user_id=admin["id"],
                                                user=admin["name"])
        except MedScanError as err:
            st.error(str(err))
            return
        st.session_state["models_flash"] = f"Rolled back: {now} is active again (was {before})."
        if task == "classifier":
            st.session_state["models_library_note"] = queue_embeddings_if_needed(now, admin)
        st.rerun()


def _eval_set_ui(status: dict[str, str]) -> None:
    sets = eval_sets(registry.evaluations("classifier"))
    st.subheader("On the evaluation set")
    if not sets:
        st.info("No version has been evaluated on a fixed evaluation set yet. A run from the "
                "Training page evaluates its candidate and the active version on the set named "
                "there (or MEDSCAN_EVAL_DIR); `python -m core models evaluate --data DIR` "
                "evaluates any versions.")
        return
    labels = {s["fingerprint"]: s for s in sets}
    fp = st.selectbox("Evaluation set", list(labels), key="clf_eval_set",
                      format_func=lambda f: f"{labels[f]['label']} "
                                            f"({len(labels[f]['reports'])} versions)")
    chosen = labels[fp]
    st.plotly_chart(plots.eval_set_metrics(
        chosen["reports"], EVAL_METRICS, status=status, labels=METRIC_LABELS,
        title=f"Evaluation set {chosen['label']}: every bar on the same images"),
        key="clf_eval_chart")
    _overlap_warnings(chosen["reports"], chosen.get("data"), fp)
    st.caption("Only figures measured on this one set are drawn here. Card figures (each "
               "version's own validation split or recorded test set) stay in the table above, "
               "in columns named by their set.")


tab_clf, tab_sr, tab_seg = st.tabs(["Classifier", "Super-resolution", "Segmentation"])
with tab_clf:
    cards = registry.list_versions("classifier")
    if not cards:
        st.info("No classifier versions yet. Train one on the Training page.")
    else:
        active = registry.active_version("classifier")
        info = {r["version"]: r for r in registry.version_rows("classifier")}
        status = {v: r["status"] for v, r in info.items()}
        st.dataframe(classifier_rows(cards, info), hide_index=True, key="clf_versions",
                     column_config={c: st.column_config.TextColumn(label, width=w)
                                    for c, (label, w) in CLASSIFIER_COLUMNS.items()})
        _eval_set_ui(status)
        st.subheader("Activate")
        _activate_ui("classifier", [c["version"] for c in cards], active, "clf", status)
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
        st.caption(f"{chosen['version']}: {recipe_line(chosen)}.")
        with st.expander("Caveats of the selected version"):
            for line in chosen.get("caveats") or ["(none listed)"]:
                st.markdown(f"- {line}")
with tab_sr:
    cards = registry.list_versions("sr")
    if not cards:
        st.info("No super-resolution versions yet.")
    status = {r["version"]: r["status"] for r in registry.version_rows("sr")}
    slots = sorted({slot_of(c) for c in cards if slot_of(c)})
    for slot in slots:
        in_slot = [c for c in cards if slot_of(c) == slot]
        active = registry.active_version("sr", slot=slot)
        st.subheader(slot.replace("_x", " ×"))
        rows, _ = sr_rows(in_slot, active)
        st.dataframe(rows, hide_index=True, key=f"sr_versions_{slot}",
                     column_config={k: st.column_config.NumberColumn(format=f)
                                    for k, f in SR_FORMATS.items()})
        # "active" from the registry counts per slot; another slot's active version is listed
        # here as a candidate of this one
        slot_status = {c["version"]: ("active" if c["version"] == active else
                                      "shipped" if status.get(c["version"]) == "shipped"
                                      else "candidate") for c in in_slot}
        _activate_ui("sr", [c["version"] for c in in_slot], active, f"sr_{slot}", slot_status,
                     slot=slot)
with tab_seg:
    cards = registry.list_versions("segmentation")
    if not cards:
        st.info("No segmentation versions yet. Train one on the Training page "
                "(Model: segmentation).")
    else:
        active = registry.active_version("segmentation")
        status = {r["version"]: r["status"] for r in registry.version_rows("segmentation")}
        st.dataframe(segmentation_rows(cards, status), hide_index=True, key="seg_versions")
        st.caption("Dice / IoU: means over held-out tumour-bearing slices (the card's test "
                   "split, never seen in training or tuning).")
        st.subheader("Activate")
        _activate_ui("segmentation", [c["version"] for c in cards], active, "seg", status)
