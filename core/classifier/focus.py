"""Background-activation penalty: train the classifier to keep its Grad-CAM layer quiet off the head.

Grad-CAM of the shipped VGG16 head (global average pooling, then one dense layer) is
``ReLU(sum_k w_kc A_k)`` over the channels ``A_k`` of its target layer, so a map can only be
large where those channels are active. A model started from self-supervised weights was found to
spread its maps over the whole crop, background corners included (issue 12: 0.16–0.18 of the
map's mass outside the head against a target of 0.10). ``--background-penalty λ`` adds to the
training loss λ times the *background share of the target layer's activation*:

    share = sum_cells bg(cell) * a(cell) / sum_cells a(cell),  a(cell) = mean_k A_k(cell)

where ``bg(cell)`` is the fraction of the cell's pixels outside the head (``head_mask`` of the
augmented training crop, area-averaged to the layer's grid). It is class-agnostic (no label is
needed inside the graph) and computed in the same forward pass, so it costs almost nothing. The
idea follows "right for the right reasons" (Ross et al. 2017) and attention-mask losses such as
GAIN (Li et al. 2018), simplified to a penalty on activations rather than on gradients.

Only the training graph changes: :func:`wrap` returns a two-input model ``(image, background
grid) -> logits`` that shares every layer (and weight) with the classifier; the published model
is the plain classifier. :func:`background_grid` makes the second input from a uint8 batch.
"""
from __future__ import annotations

import cv2
import keras
import numpy as np
from keras import ops

from core.classifier.preprocess import head_mask

__all__ = ["BackgroundPenalty", "wrap", "unwrap_input", "background_grid", "grid_shape",
           "background_share"]

MASK_INPUT = "background_grid"


@keras.saving.register_keras_serializable(package="medscan")
class BackgroundPenalty(keras.layers.Layer):
    """``(logits, activations (B, h, w, C), background grid (B, h, w)) -> logits``, unchanged,
    adding ``weight * mean over the batch of the background share`` to the model's losses."""

    def __init__(self, weight: float, **kwargs):
        super().__init__(**kwargs)
        self.weight = float(weight)

    def call(self, inputs):
        logits, acts, bg = inputs
        share = background_share(acts, bg)
        self.add_loss(self.weight * ops.mean(share))
        return logits

    def compute_output_shape(self, input_shapes):
        return input_shapes[0]

    def get_config(self):
        return dict(super().get_config(), weight=self.weight)


def background_share(acts, bg):
    """Per image: the share of the channel-mean activation that lies in background cells.
    ``acts`` (B, h, w, C) non-negative, ``bg`` (B, h, w) in [0, 1]; returns (B,)."""
    a = ops.mean(ops.cast(acts, "float32"), axis=-1)
    bg = ops.cast(bg, "float32")
    return ops.sum(a * bg, axis=(1, 2)) / (ops.sum(a, axis=(1, 2)) + 1e-6)


def grid_shape(model, layer: str) -> tuple[int, int]:
    """(h, w) of ``layer``'s output in ``model``."""
    shape = model.get_layer(layer).output.shape
    return int(shape[1]), int(shape[2])


def wrap(model, layer: str, weight: float, name: str | None = None):
    """The training model: ``[image, background grid] -> logits (through BackgroundPenalty)``,
    sharing the classifier's layers. The classifier's ``logits`` layer stays reachable by name."""
    if weight <= 0:
        raise ValueError(f"background penalty must be > 0, got {weight!r}.")
    h, w = grid_shape(model, layer)
    bg_in = keras.Input((h, w), name=MASK_INPUT)
    logits = model.get_layer("logits").output
    out = BackgroundPenalty(weight, name="background_penalty")(
        [logits, model.get_layer(layer).output, bg_in])
    # keep the classifier's softmax output: the loss expects probabilities
    probs = model.layers[-1](out)
    return keras.Model([model.inputs[0], bg_in], probs, name=name or f"{model.name}_focus")


def unwrap_input(x):
    """The image batch of a (possibly two-input) batch."""
    return x[0] if isinstance(x, (tuple, list)) else x


def background_grid(batch: np.ndarray, grid: tuple[int, int],
                    threshold: float = 0.5) -> np.ndarray:
    """uint8 (B, S, S) crops -> float32 (B, h, w): per cell, the fraction of its pixels outside
    :func:`~core.classifier.preprocess.head_mask` (area average)."""
    h, w = grid
    out = np.empty((len(batch), h, w), np.float32)
    for i, img in enumerate(batch):
        bg = (~head_mask(np.clip(img, 0, 255).astype(np.uint8), threshold)).astype(np.float32)
        out[i] = cv2.resize(bg, (w, h), interpolation=cv2.INTER_AREA)
    return out
