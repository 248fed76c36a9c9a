"""U-Net: encoder/decoder with skip connections for binary segmentation (Ronneberger, Fischer and
Brox 2015, "U-Net: Convolutional Networks for Biomedical Image Segmentation", MICCAI,
arXiv:1505.04597).

Layout as in the paper: ``depth`` encoder stages of two 3×3 convolutions + ReLU followed by a 2×2
max-pool (filters doubling from ``base_filters``), a bottleneck of two convolutions, ``depth``
decoder stages of a 2×2 transposed convolution (halving the filters), concatenation with the
encoder stage's output, two 3×3 convolutions + ReLU, and a 1×1 convolution with a sigmoid: one
tumour probability per pixel. Input ``(N, S, S, 1)`` in [0, 1] ("unit" normalisation).

Differences from the paper, deliberate: ``"same"`` padding (output size = input size, no
cropping of skip connections), optional batch normalisation after each convolution (Ioffe &
Szegedy 2015; trains faster from scratch), optional dropout in the bottleneck only.

Fixed layer names: ``enc{i}_conv{1,2}`` / ``enc{i}_bn{1,2}`` / ``enc{i}_relu{1,2}`` /
``enc{i}_pool``, ``bottleneck_conv{1,2}``, ``dec{i}_up``, ``dec{i}_concat``, ``dec{i}_conv{1,2}``
(``i`` counts from 1 at full resolution), ``logits`` (1×1 convolution) and ``mask`` (sigmoid,
float32 so that mixed precision never rounds probabilities).
"""
from __future__ import annotations

import keras
from keras import layers

__all__ = ["build_unet", "OUTPUT_LAYER", "LOGITS_LAYER", "BN_MOMENTUM", "TINY_CONFIG"]

OUTPUT_LAYER = "mask"
LOGITS_LAYER = "logits"
# Batch-norm momentum 0.9 instead of Keras' 0.99: with few steps per epoch on the CPU the moving
# statistics otherwise lag behind the weights and evaluation looks broken for the first epochs.
BN_MOMENTUM = 0.9
# The smallest useful configuration (tests: builds in well under a second on the CPU).
TINY_CONFIG = {"input_size": 32, "base_filters": 4, "depth": 2}


def _conv_block(x, filters: int, name: str, batch_norm: bool, bn_momentum: float):
    for j in (1, 2):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=not batch_norm,
                          kernel_initializer="he_normal", name=f"{name}_conv{j}")(x)
        if batch_norm:
            x = layers.BatchNormalization(momentum=bn_momentum, name=f"{name}_bn{j}")(x)
        x = layers.Activation("relu", name=f"{name}_relu{j}")(x)
    return x


def build_unet(input_size: int = 128, base_filters: int = 16, depth: int = 4,
               batch_norm: bool = True, dropout: float = 0.0, channels: int = 1,
               bn_momentum: float = BN_MOMENTUM):
    """U-Net for ``(input_size, input_size, channels)`` inputs; output ``(S, S, 1)`` sigmoid.

    ``input_size`` must be divisible by ``2**depth`` (each encoder stage halves it)."""
    for name, value, lo in (("input_size", input_size, 2), ("base_filters", base_filters, 1),
                            ("depth", depth, 1), ("channels", channels, 1)):
        if not isinstance(value, int) or isinstance(value, bool) or value < lo:
            raise ValueError(f"{name} must be an integer >= {lo}, got {value!r}.")
    if input_size % (2 ** depth):
        step = 2 ** depth
        raise ValueError(f"input_size {input_size} is not divisible by 2**depth = {step} "
                         f"(depth {depth}): choose e.g. {step * max(1, input_size // step)}.")
    if not 0.0 <= float(dropout) < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout!r}.")
    inputs = keras.Input((input_size, input_size, channels), name="image")
    x, skips = inputs, []
    for i in range(1, depth + 1):
        x = _conv_block(x, base_filters * 2 ** (i - 1), f"enc{i}", batch_norm, bn_momentum)
        skips.append(x)
        x = layers.MaxPooling2D(2, name=f"enc{i}_pool")(x)
    x = _conv_block(x, base_filters * 2 ** depth, "bottleneck", batch_norm, bn_momentum)
    if dropout:
        x = layers.Dropout(float(dropout), name="bottleneck_dropout")(x)
    for i in range(depth, 0, -1):
        f = base_filters * 2 ** (i - 1)
        x = layers.Conv2DTranspose(f, 2, strides=2, name=f"dec{i}_up")(x)
        x = layers.Concatenate(name=f"dec{i}_concat")([skips[i - 1], x])
        x = _conv_block(x, f, f"dec{i}", batch_norm, bn_momentum)
    logits = layers.Conv2D(1, 1, name=LOGITS_LAYER)(x)
    out = layers.Activation("sigmoid", dtype="float32", name=OUTPUT_LAYER)(logits)
    return keras.Model(inputs, out, name="unet")
