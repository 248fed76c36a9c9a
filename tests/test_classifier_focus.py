"""The background-activation penalty (core.classifier.focus): its value, its grid, and a tiny
training run that uses it, publishes a plain classifier and resumes."""
from __future__ import annotations

import numpy as np
import pytest

from core.classifier.train import TrainConfig, train
TINY = dict(input_size=32, width=1 / 16, batch_size=16, epochs=2, val_fraction=0.25,
            warmup_epochs=0, workers=1)

keras = pytest.importorskip("keras")


def test_background_share_is_the_activation_share_in_background_cells():
    from core.classifier.focus import background_share

    acts = np.zeros((2, 2, 2, 3), np.float32)
    acts[0, 0, 0] = 3.0          # image 0: all activation in cell (0, 0)
    acts[1] = 1.0                # image 1: uniform
    bg = np.zeros((2, 2, 2), np.float32)
    bg[:, 0, 0] = 1.0            # cell (0, 0) is background
    bg[:, 1, 1] = 0.5            # cell (1, 1) half background
    share = np.asarray(keras.ops.convert_to_numpy(background_share(acts, bg)))
    np.testing.assert_allclose(share, [1.0, 1.5 / 4], rtol=1e-5)


def test_background_grid_marks_the_corners_of_a_disc():
    from core.classifier.focus import background_grid

    img = np.zeros((64, 64), np.uint8)
    yy, xx = np.mgrid[:64, :64]
    img[(yy - 32) ** 2 + (xx - 32) ** 2 < 30 ** 2] = 160
    g = background_grid(img[None], (4, 4))[0]
    assert g.shape == (4, 4)
    assert g[0, 0] > 0.4 and g[3, 3] > 0.4          # corners: mostly outside the head
    assert g[1:3, 1:3].max() == 0.0                 # centre: all head


def test_penalty_adds_lambda_times_share_to_the_loss():
    """The wrapped model's loss = cross-entropy + λ × mean background share, and the wrapper
    shares its weights with the classifier (same list, same order)."""
    from core.classifier.focus import background_share, grid_shape, wrap
    from core.models import build_model

    card = {"architecture": "vgg16_bn", "network": {"num_classes": 4, "input_shape": [32, 32, 3],
                                                     "width": 0.125, "dropout": 0.0}}
    model = build_model(card)
    wrapped = wrap(model, "block5_conv3_relu", 2.0)
    assert all(a is b for a, b in zip(wrapped.weights, model.weights))
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 32, 32, 3)).astype(np.float32) * 50
    y = np.eye(4, dtype=np.float32)[[0, 1, 2, 3]]
    grid = rng.random((4, *grid_shape(model, "block5_conv3_relu"))).astype(np.float32)
    wrapped.compile(loss="categorical_crossentropy")
    model.compile(loss="categorical_crossentropy")
    total = wrapped.evaluate((x, grid), y, verbose=0)
    ce = model.evaluate(x, y, verbose=0)
    acts = keras.Model(model.inputs[0], model.get_layer("block5_conv3_relu").output)(x)
    share = float(np.mean(keras.ops.convert_to_numpy(background_share(acts, grid))))
    assert share > 0.05
    assert total == pytest.approx(ce + 2.0 * share, rel=1e-3)
    with pytest.raises(ValueError, match="must be > 0"):
        wrap(model, "block5_conv3_relu", 0.0)


def test_training_with_the_penalty_publishes_a_plain_classifier(data_dir, tmp_path):
    from core import registry
    from core.classifier.inference import Classifier

    cfg = TrainConfig(data=str(data_dir / "brain-mri"), arch="vgg16_bn", version="focus",
                      background_penalty=0.5, run_dir=str(tmp_path / "run"),
                      weights_dir=str(tmp_path / "w"), **TINY)
    events = []
    result = train(cfg, events.append)
    assert any("background penalty 0.5" in (e.message or "") for e in events)
    card = result.card
    assert card["training"]["config"]["background_penalty"] == 0.5
    assert "background penalty (λ = 0.5)" in card["description"]
    from core.classifier.train import PENALTY_CAVEAT

    assert card["caveats"][-1] == PENALTY_CAVEAT          # readers are told what it means
    # the published model is the one-input classifier and loads in the app
    clf = Classifier.load("focus", weights_dir=tmp_path / "w")
    gray = (np.random.default_rng(1).random((80, 80)) * 255).astype(np.uint8)
    pred, cam = clf.explain(gray)
    assert cam.shape == gray.shape and pred.label in clf.classes
    assert registry.load_card("classifier", "focus", weights_dir=tmp_path / "w")
    # resume continues the two-input training graph from last.keras
    again = train(TrainConfig(data=str(data_dir / "brain-mri"), arch="vgg16_bn",
                              background_penalty=0.5, run_dir=str(tmp_path / "run"),
                              resume=True, publish=False, **(TINY | {"epochs": 3})))
    assert [h["epoch"] for h in again.history] == [1, 2, 3]


def test_training_page_note_names_where_the_shipped_model_began():
    """The shipped classifier is the last of four stages: the Training page says so in one
    sentence, without run folders, and names the command that reruns the whole recipe."""
    import json
    from pathlib import Path

    from core.classifier.train import staged_recipe_note

    root = Path(__file__).resolve().parent.parent / "weights" / "classifier"
    card = json.loads((root / (root / "ACTIVE").read_text().strip() / "model_card.json").read_text())
    note = staged_recipe_note(card)
    assert "started from self-supervised weights (SimCLR" in note
    assert "then 3 earlier supervised stages" in note and "runs/" not in note
    assert note.endswith(f"--recipe-of {card['version']}`).") and "switch below" in note
    assert staged_recipe_note({"version": "v", "training": {"config": {}}}) is None
    plain = staged_recipe_note({"version": "v", "initialisation": {"path": "w.weights.h5"}})
    assert "continued from the weights w.weights.h5" in plain and plain.endswith("fine-tune it.")
