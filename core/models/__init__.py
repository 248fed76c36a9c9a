"""Model builders: one model per file, one public builder each (keyword args = configuration).

``build_model(card)`` rebuilds any saved model from its model card: ``card["architecture"]``
names the builder, ``card["network"]`` holds exactly its keyword arguments (BasicSR's
``build_network(opt)`` convention). Builders are imported lazily so that importing this table
does not import TensorFlow.
"""
from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

from core.errors import ModelCardError

__all__ = ["BUILDERS", "get_builder", "build_model"]

# architecture name -> "module:function"
BUILDERS: dict[str, str] = {
    "vgg16": "core.models.vgg16:build_classifier",
    "vgg16_bn": "core.models.vgg16:build_classifier_bn",
    "cnn": "core.models.simple_cnn:build_simple_cnn",
    "rrdbnet": "core.models.rrdbnet:build_rrdbnet",
    "srcnn": "core.models.srcnn:build_srcnn",
    "srresnet": "core.models.srresnet:build_srresnet",
    "esrgan_discriminator": "core.models.discriminator:build_vgg_discriminator",
    "unet": "core.models.unet:build_unet",
}


def get_builder(architecture: str) -> Callable[..., Any]:
    try:
        target = BUILDERS[architecture]
    except KeyError:
        known = ", ".join(sorted(BUILDERS))
        raise ModelCardError(f"Unknown architecture {architecture!r}; known: {known}.") from None
    module, func = target.split(":")
    return getattr(importlib.import_module(module), func)


def build_model(card: Mapping[str, Any]):
    """Build the (untrained) Keras model a model card describes."""
    architecture = card.get("architecture")
    network = card.get("network")
    if not isinstance(architecture, str) or not isinstance(network, Mapping):
        raise ModelCardError("Model card needs 'architecture' (str) and 'network' (dict).")
    builder = get_builder(architecture)
    try:
        return builder(**network)
    except TypeError as err:
        raise ModelCardError(
            f"Model card 'network' does not match {architecture}'s builder: {err}") from None
