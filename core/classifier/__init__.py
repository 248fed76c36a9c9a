"""Scan classifier (issue 3): VGG16 / VGG16-BN / small CNN, calibrated, explained by Grad-CAM.

Public API (imported lazily so that ``import core.classifier`` does not load TensorFlow)::

    from core.classifier import Classifier, Prediction
    clf = Classifier.load()                 # active registry version
    pred, heatmap = clf.explain(scan.pixels)  # one forward pass: prediction + Grad-CAM map
"""
from __future__ import annotations

__all__ = ["Classifier", "Prediction"]


def __getattr__(name: str):
    if name in __all__:
        from core.classifier import inference

        return getattr(inference, name)
    raise AttributeError(f"module 'core.classifier' has no attribute {name!r}")
