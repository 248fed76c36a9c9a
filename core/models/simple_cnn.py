"""A small sequential CNN: the baseline the app's reference paper compares VGG16 with.

Four conv/ReLU/max-pool stages, global average pooling, dropout, ``Dense`` logits and a softmax
``"predictions"`` layer (same head contract as :mod:`core.models.vgg16`). Input: ``(H, W, C)``
scaled to [0, 1] ("unit" normalisation), grayscale (C = 1) by default.
"""
from __future__ import annotations

import keras
from keras import layers

__all__ = ["build_simple_cnn", "GRADCAM_LAYER", "CNN_FILTERS"]

CNN_FILTERS: tuple[int, ...] = (32, 64, 128, 128)
GRADCAM_LAYER = "conv4"  # last convolution (ReLU inside the layer)


def build_simple_cnn(num_classes: int = 4, input_shape=(128, 128, 1),
                     filters: tuple[int, ...] | list[int] = CNN_FILTERS, dropout: float = 0.5):
    """Sequential layer stack (functional model); layer names ``conv1..convN``, ``pool1..poolN``."""
    if not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(f"num_classes must be an integer >= 2, got {num_classes!r}.")
    shape = tuple(int(s) for s in input_shape)
    if len(shape) != 3 or shape[-1] not in (1, 3) or min(shape[:2]) < 2 ** len(filters):
        raise ValueError(f"input_shape must be (H, W, 1|3) large enough for {len(filters)} "
                         f"poolings, got {input_shape!r}.")
    if len(filters) != 4:
        raise ValueError(f"filters must list 4 stage widths (GRADCAM_LAYER is 'conv4'), "
                         f"got {filters!r}.")
    stack: list = [keras.Input(shape, name="image")]
    for i, f in enumerate(filters, start=1):
        stack += [layers.Conv2D(int(f), 3, padding="same", activation="relu", name=f"conv{i}"),
                  layers.MaxPooling2D(2, name=f"pool{i}")]
    stack += [layers.GlobalAveragePooling2D(name="avg_pool"),
              layers.Dropout(dropout, name="head_dropout"),
              layers.Dense(num_classes, name="logits"),
              layers.Activation("softmax", dtype="float32", name="predictions")]
    # A plain layer stack, wired functionally so that ``model.input`` / layer outputs exist
    # for the Grad-CAM sub-model.
    x = stack[0]
    for layer in stack[1:]:
        x = layer(x)
    return keras.Model(stack[0], x, name="simple_cnn")
