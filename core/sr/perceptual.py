"""Feature extractors for the perceptual loss of ESRGAN and SRGAN (Wang et al. 2018, sec. 3.3:
VGG19 ``conv5_4`` features *before* activation, compared with L1; SRGAN's "VGG54" loss, Ledig et
al. 2017, uses the same layer).

Sources, in the order ``"auto"`` tries them:

1. ``"vgg19"``: ImageNet VGG19 from the Keras cache (``~/.keras/models``) or a weights-file
   path; features of ``block5_conv4`` before its ReLU, as in the paper.
2. ``"classifier"``: the project's own active classifier (``core.registry.load_model
   ("classifier")``, a VGG16 trained on brain MRI), features of its last convolution before the
   ReLU (after batch norm in the BN variant). Weaker than ImageNet features, but domain-specific.
3. ``"none"`` only when asked for explicitly: no perceptual term.

Extractors take ``(N, H, W, C)`` images in [0, 1] (C = 1 or 3; grayscale is repeated to RGB)
and apply the input normalisation the network was trained with (VGG19: caffe-style BGR with the
ImageNet mean subtracted on a 0–255 scale; the classifier: what its card's ``preprocessing``
says).
"""
from __future__ import annotations

import os
from pathlib import Path

from core.errors import MedScanError

__all__ = ["build_perceptual", "VGG19_LAYER", "VGG19_NOTOP_FILE", "CAFFE_MEAN_BGR"]

VGG19_LAYER = "block5_conv4"   # ESRGAN's conv5_4 (features taken before the activation)
VGG19_NOTOP_FILE = "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)   # ImageNet mean used by Keras' VGG weights


def _keras_cache_file() -> Path:
    home = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras"))
    return home / "models" / VGG19_NOTOP_FILE


def _caffe(x):
    """[0, 1] gray/RGB → BGR on 0–255 minus the ImageNet mean (Keras VGG ``preprocess_input``)."""
    import keras

    ops = keras.ops
    if x.shape[-1] == 1:
        x = ops.repeat(x, 3, axis=-1)
    x = ops.flip(x * 255.0, axis=-1)   # RGB → BGR
    return x - ops.reshape(ops.convert_to_tensor(CAFFE_MEAN_BGR, dtype=x.dtype), (1, 1, 1, 3))


def _unit(channels: int):
    """[0, 1] kept, channels repeated to what the network expects."""
    import keras

    def fn(x):
        return keras.ops.repeat(x, channels, axis=-1) if x.shape[-1] != channels else x
    return fn


def _truncate(base, target: str | None, channels: int, normalise: str = "vgg16"):
    """Re-apply ``base``'s layers to a size-free input up to ``target`` (default: the last
    Conv2D), returning pre-activation features. ``normalise``: ``"vgg16"`` (caffe-style) or
    ``"unit"`` ([0, 1]), the input convention ``base`` was trained with."""
    import keras
    from keras import layers

    convs = [lyr.name for lyr in base.layers if isinstance(lyr, layers.Conv2D)]
    if not convs:
        raise MedScanError(f"Model {base.name!r} has no convolution layers for perceptual features.")
    target = target or convs[-1]
    if target not in [lyr.name for lyr in base.layers]:
        raise MedScanError(f"Layer {target!r} not in {base.name!r}; conv layers: {', '.join(convs)}.")
    inp = keras.Input((None, None, channels), name="image01")
    if normalise == "vgg16":
        x = layers.Lambda(_caffe, name="caffe_preprocess")(inp)
    elif normalise == "unit":
        x = layers.Lambda(_unit(int(base.inputs[0].shape[-1])), name="unit_preprocess")(inp)
    else:
        raise MedScanError(f"Unknown input normalisation {normalise!r} for perceptual features.")
    seq = [lyr for lyr in base.layers if not isinstance(lyr, layers.InputLayer)]
    for i, lyr in enumerate(seq):
        if isinstance(lyr, (layers.Flatten, layers.Dense, layers.GlobalAveragePooling2D,
                            layers.GlobalMaxPooling2D)):
            raise MedScanError(f"Reached {lyr.name!r} before the feature layer {target!r}.")
        if lyr.name != target:
            x = lyr(x)
            continue
        if isinstance(lyr, layers.Conv2D) and lyr.get_config().get("activation") != "linear":
            cfg = lyr.get_config() | {"activation": "linear", "name": f"{lyr.name}_preact"}
            conv = layers.Conv2D.from_config(cfg)
            x = conv(x)
            conv.set_weights(lyr.get_weights())
        else:
            x = lyr(x)
            nxt = seq[i + 1] if i + 1 < len(seq) else None
            if isinstance(nxt, layers.BatchNormalization):  # BN variant: take BN output, pre-ReLU
                x = nxt(x)
        break
    model = keras.Model(inp, x, name=f"perceptual_{target}")
    model.trainable = False
    return model, target


def build_perceptual(spec: str = "auto", layer: str | None = None, *, channels: int = 1):
    """Return ``(extractor or None, info)``; ``info`` (for the model card) says which features
    were used. Raises :class:`MedScanError` when ``spec`` cannot be satisfied."""
    spec = (spec or "auto").strip()
    if spec == "none":
        return None, {"kind": "none", "note": "no perceptual loss (explicitly disabled)"}
    tried = []
    if spec in ("auto", "vgg19") or spec.endswith(".h5"):
        path = Path(spec) if spec.endswith(".h5") else _keras_cache_file()
        if path.is_file():
            import keras

            base = keras.applications.VGG19(include_top=False, weights=str(path))
            model, target = _truncate(base, layer or VGG19_LAYER, channels)
            return model, {"kind": "vgg19-imagenet", "layer": target, "preactivation": True,
                           "weights": str(path)}
        if spec != "auto":
            raise MedScanError(f"VGG19 ImageNet weights not found at {str(path)!r}. Put "
                               f"{VGG19_NOTOP_FILE} there, pass its path to --perceptual, or use "
                               "--perceptual classifier / none.")
        tried.append(f"VGG19 ImageNet weights ({path}): not found")
    if spec in ("auto", "classifier"):
        from core import registry
        from core.errors import ModelCardError

        try:
            # an active ensemble has no single network: its first member's features
            base, card = registry.load_model(
                "classifier", registry.weights_version(registry.load_card("classifier")))
        except ModelCardError as err:
            if spec == "classifier":
                raise MedScanError(f"No usable classifier for perceptual features: {err}") from None
            tried.append(f"project classifier: {err}")
        else:
            prep = card.get("preprocessing") or {}
            normalise = prep.get("normalise", "vgg16") if isinstance(prep, dict) else "vgg16"
            model, target = _truncate(base, layer, channels, normalise)
            return model, {"kind": "classifier", "normalise": normalise, "layer": target,
                           "preactivation": True,
                           "classifier_version": card["version"],
                           "architecture": card["architecture"],
                           "note": "project's own brain-MRI classifier (no ImageNet VGG19 here)"}
    if spec not in ("auto", "classifier", "vgg19"):
        raise MedScanError(f"--perceptual must be auto, vgg19, classifier, none or a .h5 path; "
                           f"got {spec!r}.")
    raise MedScanError("No perceptual feature network available (" + "; ".join(tried) +
                       "). Provide VGG19 weights, train and activate a classifier, or pass "
                       "--perceptual none to train without the perceptual term.")
