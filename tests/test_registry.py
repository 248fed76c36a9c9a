from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from core import registry
from core.errors import ModelCardError, ModelNotFoundError
from core.models import BUILDERS


@pytest.fixture()
def tiny_builder(monkeypatch):
    import sys
    import types

    mod = types.ModuleType("tiny_test_builder")

    def build_tiny(units: int = 3):
        inp = keras.Input((4,))
        return keras.Model(inp, keras.layers.Dense(units, name="dense")(inp))

    mod.build_tiny = build_tiny
    monkeypatch.setitem(sys.modules, "tiny_test_builder", mod)
    monkeypatch.setitem(BUILDERS, "tiny", "tiny_test_builder:build_tiny")
    return build_tiny


def _card(**kw):
    card = {"architecture": "tiny", "network": {"units": 3}, "classes": ["a", "b", "c"],
            "input_size": 4, "preprocessing": {}}
    card.update(kw)
    return card


def test_round_trip_and_activate(tmp_weights, tiny_builder):
    model = tiny_builder(3)
    path = registry.save_version("classifier", model, _card(), version="v1", activate=True)
    assert (path / registry.WEIGHTS_FILE).is_file()
    assert registry.active_version("classifier") == "v1"
    loaded, card = registry.load_model("classifier")
    x = np.random.default_rng(0).normal(size=(2, 4)).astype("float32")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6)
    assert card["classes"] == ["a", "b", "c"] and card["created_at"]
    registry.save_version("classifier", tiny_builder(3), _card(), version="v2")
    assert registry.active_version("classifier") == "v1"
    registry.activate("classifier", "v2")
    assert registry.active_version("classifier") == "v2"
    assert {c["version"] for c in registry.list_versions("classifier")} == {"v1", "v2"}
    with pytest.raises(ModelCardError, match="already exists"):
        registry.save_version("classifier", model, _card(), version="v1")


def test_no_active_model_message(tmp_weights):
    with pytest.raises(ModelNotFoundError, match="No active classifier model"):
        registry.load_card("classifier")


@pytest.mark.parametrize("mutate, message", [
    (lambda c: c.pop("classes"), "missing classifier key"),
    (lambda c: c.pop("network"), "missing key"),
    (lambda c: c.update(classes=["only"]), "at least two"),
    (lambda c: c.update(task="detection"), "Unknown task"),
    (lambda c: c.update(network=[1, 2]), "'network' must be an object"),
])
def test_bad_cards_are_named(tmp_weights, tiny_builder, mutate, message):
    registry.save_version("classifier", tiny_builder(3), _card(), version="v1")
    path = tmp_weights / "classifier" / "v1" / registry.CARD_FILE
    card = json.loads(path.read_text())
    mutate(card)
    path.write_text(json.dumps(card))
    with pytest.raises(ModelCardError, match=message):
        registry.load_card("classifier", "v1")


def test_card_not_json_and_weights_mismatch(tmp_weights, tiny_builder):
    registry.save_version("classifier", tiny_builder(3), _card(), version="v1")
    card_path = tmp_weights / "classifier" / "v1" / registry.CARD_FILE
    card = json.loads(card_path.read_text())
    card["network"] = {"units": 5}
    card_path.write_text(json.dumps(card))
    with pytest.raises(ModelCardError, match="do not fit"):
        registry.load_model("classifier", "v1")
    card_path.write_text("{not json")
    with pytest.raises(ModelCardError, match="not valid JSON"):
        registry.load_card("classifier", "v1")


@pytest.mark.parametrize("version", ["../evil", "", "a/b", "x" * 80])
def test_bad_version_names(tmp_weights, version):
    with pytest.raises(ModelCardError, match="Invalid version"):
        registry.version_dir("classifier", version)


def test_unknown_architecture(tmp_weights):
    from core.models import build_model

    with pytest.raises(ModelCardError, match="Unknown architecture 'nope'"):
        build_model({"architecture": "nope", "network": {}})


def test_slots_hold_separate_active_versions(tmp_weights, tiny_builder):
    card = {"architecture": "tiny", "network": {"units": 3}, "scale": 4}
    registry.save_version("sr", tiny_builder(3), dict(card, method="rrdb_psnr"), version="a",
                          activate=True, slot="rrdb_psnr_x4")
    registry.save_version("sr", tiny_builder(3), dict(card, method="srcnn"), version="b",
                          activate=True, slot="srcnn_x4")
    assert registry.active_version("sr", slot="rrdb_psnr_x4") == "a"
    assert registry.active_version("sr", slot="srcnn_x4") == "b"
    assert registry.active_version("sr") is None
    assert registry.active_slots("sr") == {"rrdb_psnr_x4": "a", "srcnn_x4": "b"}
    assert registry.load_card("sr", slot="srcnn_x4")["method"] == "srcnn"
    with pytest.raises(ModelCardError, match="is active"):
        registry.delete_version("sr", "a")
    with pytest.raises(ModelNotFoundError, match="for esrgan_x4"):
        registry.load_model("sr", slot="esrgan_x4")


def test_published_files_are_world_readable(tmp_weights, tiny_builder):
    path = registry.save_version("classifier", tiny_builder(3), _card(), version="v1",
                                 activate=True)
    assert path.stat().st_mode & 0o777 == 0o755
    assert all(f.stat().st_mode & 0o777 == 0o644 for f in path.iterdir())
    assert (tmp_weights / "classifier" / "ACTIVE").stat().st_mode & 0o777 == 0o644


def test_replaced_card_stays_world_readable_and_valid(tmp_weights, tiny_builder):
    path = registry.save_version("classifier", tiny_builder(3), _card(), version="v1")
    card = registry.load_card("classifier", "v1")
    registry.replace_card("classifier", "v1", dict(card, metrics={"test": {"accuracy": 0.5}}))
    assert registry.load_card("classifier", "v1")["metrics"]["test"]["accuracy"] == 0.5
    assert (path / registry.CARD_FILE).stat().st_mode & 0o777 == 0o644
    assert [f.name for f in path.iterdir() if f.name.startswith(".")] == []   # no temp left
    with pytest.raises(ModelCardError):
        registry.replace_card("classifier", "v1", {"task": "classifier"})      # invalid: refused
    assert registry.load_card("classifier", "v1")["metrics"]["test"]["accuracy"] == 0.5


# ------------------------------------------- shipped (read-only) + data-dir registry (issue 14)


def _snapshot(root) -> dict:
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in sorted(root.rglob("*"))}


@pytest.fixture()
def layered(tmp_path, monkeypatch, tiny_builder, sqlite_url):
    """A shipped root (READ_ONLY marker, one active version) and a data-dir registry."""
    shipped = tmp_path / "shipped"
    monkeypatch.setenv("MEDSCAN_WEIGHTS_DIR", str(shipped))
    registry.save_version("classifier", tiny_builder(3), _card(), version="ship1",
                          activate=True)
    (shipped / registry.READ_ONLY_MARKER).write_text("shipped\n")
    monkeypatch.setenv("MEDSCAN_REGISTRY_DIR", str(tmp_path / "data" / "weights"))
    return shipped, tmp_path / "data" / "weights"


def test_trained_versions_go_to_the_data_registry_as_candidates(layered, tiny_builder):
    shipped, local = layered
    before = _snapshot(shipped)
    path = registry.save_version("classifier", tiny_builder(3), _card(), version="cand1")
    assert path == local / "classifier" / "cand1"
    assert registry.active_version("classifier") == "ship1"            # not activated
    assert {c["version"] for c in registry.list_versions("classifier")} == {"ship1", "cand1"}
    statuses = {r["version"]: (r["status"], r["where"])
                for r in registry.version_rows("classifier")}
    assert statuses == {"ship1": ("active", "shipped (read-only)"),
                        "cand1": ("candidate", "app registry")}
    registry.load_model("classifier", "cand1")
    registry.activate("classifier", "cand1")
    assert registry.active_version("classifier") == "cand1"
    assert (local / "classifier" / "ACTIVE").read_text().strip() == "cand1"
    assert registry.version_status("classifier", "ship1") == "shipped"
    with pytest.raises(ModelCardError, match="shipped version"):
        registry.delete_version("classifier", "ship1")
    with pytest.raises(ModelCardError, match="already exists"):
        registry.save_version("classifier", tiny_builder(3), _card(), version="ship1")
    assert _snapshot(shipped) == before          # nothing written into the shipped root


def test_activate_and_rollback_are_audited(layered, tiny_builder):
    from sqlalchemy import select

    from core.db import init_db, session_scope
    from core.db.tables import AuditLog

    registry.save_version("classifier", tiny_builder(3), _card(), version="cand1")
    engine = init_db()
    with session_scope(engine) as s:
        with pytest.raises(ModelNotFoundError, match="Nothing to roll back"):
            registry.rollback(s, "classifier", user_id=None)
        prev = registry.activate_audited(s, "classifier", "cand1", user_id=None,
                                         deltas={"accuracy": 0.01})
    assert prev == "ship1" and registry.previous_version("classifier") == "ship1"
    with session_scope(engine) as s:
        assert registry.rollback(s, "classifier", user_id=None) == ("ship1", "cand1")
    assert registry.active_version("classifier") == "ship1"
    assert registry.previous_version("classifier") is None    # a rollback is not toggled back
    with session_scope(engine) as s:
        rows = [(r.action, r.detail) for r in s.scalars(select(AuditLog).order_by(AuditLog.id))]
    assert [a for a, _ in rows] == ["model_activate", "model_rollback"]
    assert rows[0][1]["version"] == "cand1" and rows[0][1]["previous"] == "ship1"
    assert rows[0][1]["deltas"] == {"accuracy": 0.01}
    assert rows[1][1]["version"] == "ship1" and rows[1][1]["previous"] == "cand1"
    assert [e["action"] for e in registry.history("classifier")] == ["activate", "rollback"]


def _report(acc, n=160, fp="sha256:aaaa"):
    return {"accuracy": acc, "macro_f1": acc - 0.01, "ece": 0.05, "n": n,
            "data": "/eval", "data_fingerprint": fp}


def test_compare_on_the_same_evaluation_set(layered, tiny_builder):
    shipped, local = layered
    registry.save_version("classifier", tiny_builder(3), _card(), version="cand1")
    cmp = registry.compare_on_eval_set("classifier", "cand1", "ship1")
    assert cmp["set"] is None and cmp["worse"] and "not been evaluated" in cmp["warnings"][0]
    registry.record_evaluation("classifier", "ship1", _report(0.90))
    registry.record_evaluation("classifier", "cand1", _report(0.50, fp="sha256:bbbb"))
    assert registry.compare_on_eval_set("classifier", "cand1", "ship1")["set"] is None
    registry.record_evaluation("classifier", "cand1", _report(0.93))
    cmp = registry.compare_on_eval_set("classifier", "cand1", "ship1")
    assert cmp["set"]["fingerprint"] == "sha256:aaaa" and cmp["set"]["n"] == 160
    acc = next(r for r in cmp["rows"] if r["metric"] == "accuracy")
    assert acc["delta"] == pytest.approx(0.03) and acc["better"] is True
    assert not cmp["worse"] and cmp["warnings"] == []
    registry.record_evaluation("classifier", "cand1", _report(0.25, n=4, fp="sha256:cccc"))
    registry.record_evaluation("classifier", "ship1", _report(0.75, n=4, fp="sha256:cccc"))
    cmp = registry.compare_on_eval_set("classifier", "cand1", "ship1")   # newest common set
    assert cmp["set"]["n"] == 4 and cmp["worse"]
    worse = next(w for w in cmp["warnings"] if "WORSE" in w)
    assert "accuracy" in worse and "macro_f1" not in worse     # metric names in words
    assert any("only 4 images" in w for w in cmp["warnings"])
    assert not (shipped / "classifier" / ".evaluations").exists()   # beside, never in shipped


def test_cli_list_activate_rollback(layered, tiny_builder, capsys):
    from core.cli import main

    registry.save_version("classifier", tiny_builder(3), _card(), version="cand1")
    assert main(["models", "list", "classifier"]) == 0
    out = capsys.readouterr().out
    assert "* ship1" in out and "active" in out and "shipped (read-only)" in out
    assert "cand1" in out and "candidate" in out
    # not a terminal and no --yes: refused
    assert main(["models", "activate", "classifier", "cand1"]) == 2
    assert registry.active_version("classifier") == "ship1"
    assert "not been evaluated" in capsys.readouterr().err
    assert main(["models", "activate", "classifier", "cand1", "--yes"]) == 0
    assert registry.active_version("classifier") == "cand1"
    assert main(["models", "rollback", "classifier"]) == 0
    assert "cand1 -> ship1" in capsys.readouterr().out
    assert registry.active_version("classifier") == "ship1"


def test_cards_record_paths_relative_to_the_project(tmp_weights, tiny_builder):
    """A card never records an absolute path of the machine that wrote it: paths inside the
    project, or in a folder beside it (the shared data sets), are written relative to it, and
    read back on this machine through config.recorded_path."""
    from core.config import REPO_ROOT, recorded_path

    data = REPO_ROOT.parent / "shared" / "datasets" / "brain-mri" / "train"
    card = _card(data={"path": str(data)},
                 training={"command": f"python -m core train classifier --data {data} "
                                      f"--run-dir {REPO_ROOT / 'data' / 'runs'}"})
    registry.save_version("classifier", tiny_builder(3), card, version="v1")
    saved = registry.load_card("classifier", "v1")
    assert saved["data"]["path"] == "../shared/datasets/brain-mri/train"
    assert saved["training"]["command"] == ("python -m core train classifier --data "
                                            "../shared/datasets/brain-mri/train --run-dir data/runs")
    assert recorded_path(saved["data"]["path"]) == data
    registry.replace_card("classifier", "v1", dict(saved, test={"data": str(REPO_ROOT / "x")}))
    assert registry.load_card("classifier", "v1")["test"]["data"] == "x"


def test_shipped_cards_hold_no_absolute_paths():
    import json

    from core.config import REPO_ROOT

    for path in (REPO_ROOT / "weights").glob("*/*/model_card.json"):
        text = json.dumps(json.loads(path.read_text()))
        assert "/work/" not in text and "/tmp/" not in text and "/root/" not in text, path
