"""The one table of classifier architectures: name -> builder function, Grad-CAM layer, input
preprocessing and defaults. The CLI's choices, the Training page's selector, the training
code's network description and the Grad-CAM layer of an old card without one all come from here.

Builders are referenced as functions; each is a thin wrapper that imports its Keras module when
called, so importing this table (the CLI's argument parser, the pages) does not load Keras.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from core.errors import ModelCardError

__all__ = ["Architecture", "CLASSIFIER_ARCHITECTURES", "architecture", "DEFAULT_ARCHITECTURE",
           "gradcam_layer_for"]


def _vgg16(**kw) -> Any:
    from core.models.vgg16 import build_classifier

    return build_classifier(**kw)


def _vgg16_bn(**kw) -> Any:
    from core.models.vgg16 import build_classifier_bn

    return build_classifier_bn(**kw)


def _cnn(**kw) -> Any:
    from core.models.simple_cnn import build_simple_cnn

    return build_simple_cnn(**kw)


@dataclass(frozen=True)
class Architecture:
    name: str
    description: str           # what people read (CLI help, the Training page)
    label: str                 # how a model card's description names it
    builder: Callable[..., Any]
    gradcam_layer: str         # the layer Grad-CAM reads (constants of core/models; tested)
    normalise: str             # core.classifier.preprocess mode
    channels: int
    default_width: float | None   # VGG filter multiplier; None: the builder has no width
    pretrained_weights: bool      # can start from ImageNet-style no-top weights
    uses_bn_momentum: bool = False


CLASSIFIER_ARCHITECTURES: dict[str, Architecture] = {a.name: a for a in (
    Architecture("vgg16_bn", "batch-normalised VGG16 (learns from scratch; the shipped recipe)",
                 "batch-normalised VGG16 (vgg16_bn layout)", _vgg16_bn, "block5_conv3_relu",
                 "vgg16", 3, 0.5, False, uses_bn_momentum=True),
    Architecture("vgg16", "plain VGG16 (stays at chance from scratch: needs --pretrained "
                          "imagenet)", "VGG16", _vgg16, "block5_conv3", "vgg16", 3, 1.0, True),
    Architecture("cnn", "small sequential CNN baseline (grayscale)", "sequential CNN baseline",
                 _cnn, "conv4", "unit", 1, None, False),
)}
DEFAULT_ARCHITECTURE = "vgg16_bn"


def architecture(name: str | None) -> Architecture:
    """The table's entry; ``ValueError`` naming the known ones otherwise."""
    try:
        return CLASSIFIER_ARCHITECTURES[str(name)]
    except KeyError:
        raise ValueError(f"Unknown architecture {name!r}; expected "
                         f"{', '.join(CLASSIFIER_ARCHITECTURES)}.") from None


def gradcam_layer_for(card: dict) -> str:
    """The Grad-CAM target layer: the card's ``gradcam_layer``, else the architecture table's."""
    if card.get("gradcam_layer"):
        return card["gradcam_layer"]
    arch = CLASSIFIER_ARCHITECTURES.get(card.get("architecture"))
    if arch is None:
        raise ModelCardError(f"No Grad-CAM layer known for architecture "
                             f"{card.get('architecture')!r}.")
    return arch.gradcam_layer
