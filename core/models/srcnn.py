"""SRCNN, the classic CNN super-resolution baseline (Dong et al. 2014, "Learning a Deep
Convolutional Network for Image Super-Resolution", ECCV; 9-1-5 configuration, 64/32 filters).

SRCNN works on a bicubic-upscaled image. To share one interface with RRDBNet, the upscaling is
inside the model: input is the LR image ``(N, h, w, C)`` in [0, 1], output ``(N, s*h, s*w, C)``.
Convolutions use "same" padding (the paper used "valid" and a smaller output).
``global_residual=True`` predicts only the correction to the bicubic image (Kim et al. 2016),
which trains far faster with Adam than the paper's plain mapping; the shipped model uses it.
"""
from __future__ import annotations

import keras
from keras import layers

__all__ = ["build_srcnn"]


def build_srcnn(scale: int = 4, num_in_ch: int = 1, num_out_ch: int = 1, n1: int = 64,
                n2: int = 32, f1: int = 9, f2: int = 1, f3: int = 5,
                global_residual: bool = False, name: str = "srcnn") -> keras.Model:
    """Build SRCNN (untrained): patch extraction f1×f1×n1, non-linear mapping f2×f2×n2,
    reconstruction f3×f3; ``scale`` ≥ 1 is the built-in bicubic upscaling factor."""
    if not isinstance(scale, int) or scale < 1:
        raise ValueError(f"SRCNN scale must be a positive integer, got {scale!r}.")
    if global_residual and num_in_ch != num_out_ch:
        raise ValueError("global_residual needs num_in_ch == num_out_ch.")
    inp = keras.Input(shape=(None, None, num_in_ch), name="lr")
    up = (layers.UpSampling2D(scale, interpolation="bicubic", name="bicubic")(inp)
          if scale > 1 else inp)
    x = layers.Conv2D(n1, f1, padding="same", activation="relu", name="patch_extraction")(up)
    x = layers.Conv2D(n2, f2, padding="same", activation="relu", name="mapping")(x)
    out = layers.Conv2D(num_out_ch, f3, padding="same", name="reconstruction")(x)
    if global_residual:
        out = layers.Add(name="global_add")([out, up])
    return keras.Model(inp, out, name=name)
