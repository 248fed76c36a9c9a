"""Tumour segmentation (U-Net): data pairs and their split, training, evaluation, inference.

Modules: :mod:`.data` (image + mask pairs, the split by figshare number, the head-crop / resize
preprocessing shared by training and inference, augmentation), :mod:`.metrics` (Dice, IoU,
bootstrap), :mod:`.train`, :mod:`.evaluate`, :mod:`.inference` (:class:`Segmenter`),
:mod:`.cli` (``train segmentation``, ``evaluate segmentation``, ``segment``). Nothing here
imports TensorFlow at import time except :mod:`.train` and :mod:`.inference` when used.
"""
from __future__ import annotations

__all__ = ["TASK"]

TASK = "segmentation"
