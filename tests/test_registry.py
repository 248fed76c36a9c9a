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
    (lambda c: c.update(task="segmentation"), "Unknown task"),
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
