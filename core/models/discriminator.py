"""ESRGAN's VGG-style discriminator (Wang et al. 2018; BasicSR ``VGGStyleDiscriminator``).

Used as the critic ``C(x)`` of the relativistic average GAN (Jolicoeur-Martineau 2018): it
returns one raw logit per image (no sigmoid); the relativistic comparison happens in the loss.
Five stages of (3×3 conv, 4×4 stride-2 conv) with batch norm and LeakyReLU(0.2), widths
``num_feat × (1, 2, 4, 8, 8)``, then Dense(100) → LeakyReLU → Dense(1). The input side must be
a multiple of 32 (BasicSR fixes it to 128 or 256).
"""
from __future__ import annotations

import keras
from keras import layers

__all__ = ["build_vgg_discriminator", "DISC_LRELU_SLOPE", "DISC_BN_MOMENTUM", "DISC_HIDDEN"]

# LeakyReLU slope, as in ESRGAN/SRGAN discriminators.
DISC_LRELU_SLOPE = 0.2
# PyTorch's BatchNorm momentum 0.1 expressed in Keras' convention (1 − 0.1).
DISC_BN_MOMENTUM = 0.9
# Width of the hidden dense layer (BasicSR ``linear1``).
DISC_HIDDEN = 100
_WIDTHS = (1, 2, 4, 8, 8)


def build_vgg_discriminator(num_in_ch: int = 1, num_feat: int = 64, input_size: int = 128,
                            name: str = "esrgan_discriminator") -> keras.Model:
    """Build the discriminator for ``input_size×input_size×num_in_ch`` images in [0, 1]."""
    if input_size % 32 or input_size < 32:
        raise ValueError(f"input_size must be a positive multiple of 32, got {input_size!r}.")
    inp = keras.Input(shape=(input_size, input_size, num_in_ch), name="image")
    x = inp
    for i, mult in enumerate(_WIDTHS):
        f = num_feat * mult
        x = layers.Conv2D(f, 3, padding="same", use_bias=(i == 0), name=f"conv{i}_0")(x)
        if i > 0:
            x = layers.BatchNormalization(momentum=DISC_BN_MOMENTUM, epsilon=1e-5,
                                          name=f"bn{i}_0")(x)
        x = layers.LeakyReLU(DISC_LRELU_SLOPE, name=f"lrelu{i}_0")(x)
        x = layers.Conv2D(f, 4, strides=2, padding="same", use_bias=False, name=f"conv{i}_1")(x)
        x = layers.BatchNormalization(momentum=DISC_BN_MOMENTUM, epsilon=1e-5,
                                      name=f"bn{i}_1")(x)
        x = layers.LeakyReLU(DISC_LRELU_SLOPE, name=f"lrelu{i}_1")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(DISC_HIDDEN, name="linear1")(x)
    x = layers.LeakyReLU(DISC_LRELU_SLOPE, name="lrelu_linear1")(x)
    out = layers.Dense(1, dtype="float32", name="logit")(x)
    return keras.Model(inp, out, name=name)
