"""The Keras graph of a classifier ensemble (:mod:`core.classifier.ensemble`): one model over
the loaded member models, sharing their layers. ``Classifier.load`` builds it for an ensemble
card from the members :func:`core.registry.ensemble_member_cards` checked."""
from __future__ import annotations

from collections.abc import Sequence

from core.classifier.architectures import gradcam_layer_for
from core.errors import ModelCardError

__all__ = ["MEMBER_PREFIX", "ensemble_model", "member_models", "load_ensemble"]

MEMBER_PREFIX = "member_"          # the Keras sub-model of member i is named member_<i>


def ensemble_model(models: Sequence, cards: Sequence[dict]):
    """One Keras model over the loaded member ``models`` (with their ``cards``): a shared input,
    each member as a sub-model ``member_<i>`` returning [its Grad-CAM layer's activations, its
    logits], a layer ``logits`` (their mean) and the softmax. The members' layers are shared,
    not copied."""
    import keras

    if not models or len(models) != len(cards):
        raise ModelCardError("An ensemble needs at least one member model.")
    shapes = {tuple(m.input.shape[1:]) for m in models}
    if len(shapes) != 1:
        raise ModelCardError(f"The ensemble's members take different inputs {sorted(shapes)}.")
    inp = keras.Input(shape=shapes.pop(), name="scan")
    logits = []
    for i, (model, card) in enumerate(zip(models, cards)):
        try:
            acts = model.get_layer(gradcam_layer_for(card)).output
            out = model.get_layer("logits").output
        except ValueError as err:
            raise ModelCardError(f"Ensemble member {card.get('version')}: {err}") from None
        sub = keras.Model(model.input, [acts, out], name=f"{MEMBER_PREFIX}{i}")
        logits.append(sub(inp)[1])
    mean = (keras.layers.Average(name="logits")(logits) if len(logits) > 1
            else keras.layers.Identity(name="logits")(logits[0]))
    probs = keras.layers.Activation("softmax", dtype="float32", name="predictions")(mean)
    return keras.Model(inp, probs, name="ensemble")


def member_models(model, card: dict) -> list:
    """The member sub-models (outputs [Grad-CAM activations, logits]) of an
    :func:`ensemble_model`, in the card's order."""
    try:
        return [model.get_layer(f"{MEMBER_PREFIX}{i}") for i in range(len(card["members"]))]
    except ValueError:
        raise ModelCardError(f"Model {card.get('version')}: not an ensemble model of "
                             f"{len(card['members'])} members.") from None


def load_ensemble(card: dict, *, weights_dir=None):
    """The Keras model of the ensemble ``card``: its members checked
    (:func:`core.registry.ensemble_member_cards`), loaded and joined."""
    from core import registry

    cards = registry.ensemble_member_cards("classifier", card, weights_dir=weights_dir)
    models = []
    for mcard in cards:
        try:
            models.append(registry.load_model("classifier", mcard["version"],
                                              weights_dir=weights_dir)[0])
        except ModelCardError as err:
            raise ModelCardError(f"Ensemble {card['version']}: member "
                                 f"{mcard['version']}: {err}") from None
    return ensemble_model(models, cards)
