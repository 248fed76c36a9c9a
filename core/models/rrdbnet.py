"""RRDBNet: the ESRGAN generator (Wang et al. 2018, "ESRGAN: Enhanced Super-Resolution Generative
Adversarial Networks", ECCV workshops, arXiv:1809.00219).

Arguments follow BasicSR's ``archs/rrdbnet_arch.py`` (``num_in_ch``, ``num_out_ch``, ``scale``,
``num_feat``, ``num_block``, ``num_grow_ch``); the paper's configuration is
``num_feat=64, num_block=23, num_grow_ch=32``. Input: low-resolution image, ``(N, h, w, C)`` in
[0, 1] (any ``h``, ``w``); output: ``(N, scale*h, scale*w, C_out)``, not clipped.

Differences from BasicSR, both deliberate:

* ``scale=2`` upsamples once (nearest ×2 + conv) instead of pixel-unshuffling the input and
  upsampling twice; that keeps x2 as cheap as the shipped CPU configuration needs.
* ``global_residual=True`` (off by default, as in the paper) adds a bicubic upscale of the input
  to the output so that the body learns only the missing detail (the VDSR trick, Kim et al.
  2016); it makes short CPU training runs converge much faster.
"""
from __future__ import annotations

import keras
from keras import layers

__all__ = ["build_rrdbnet", "RESIDUAL_SCALE", "LRELU_SLOPE", "INIT_SCALE"]

# Residual scaling (ESRGAN sec. 3.2): scale each dense block's residual by 0.2 before adding it,
# which keeps very deep BN-free networks stable.
RESIDUAL_SCALE = 0.2
# LeakyReLU negative slope used throughout ESRGAN.
LRELU_SLOPE = 0.2
# BasicSR's ``default_init_weights(scale=0.1)``: Kaiming-normal weights multiplied by 0.1 (a
# smaller initialisation that, per the paper, makes the deep residual network easier to train).
INIT_SCALE = 0.1


def _init() -> keras.initializers.Initializer:
    # Kaiming normal has variance 2/fan_in; multiplying weights by INIT_SCALE scales it by INIT_SCALE².
    return keras.initializers.VarianceScaling(scale=2.0 * INIT_SCALE**2, mode="fan_in",
                                              distribution="untruncated_normal")


def _lrelu(x, name: str):
    return layers.LeakyReLU(negative_slope=LRELU_SLOPE, name=name)(x)


def _residual_dense_block(x, num_feat: int, num_grow_ch: int, name: str):
    """Five 3×3 convs with dense connections; the fifth (no activation) is scaled and added."""
    feats = [x]
    for i in range(1, 5):
        inp = feats[0] if len(feats) == 1 else layers.Concatenate(name=f"{name}_cat{i}")(feats)
        y = layers.Conv2D(num_grow_ch, 3, padding="same", kernel_initializer=_init(),
                          name=f"{name}_conv{i}")(inp)
        feats.append(_lrelu(y, f"{name}_lrelu{i}"))
    y = layers.Conv2D(num_feat, 3, padding="same", kernel_initializer=_init(),
                      name=f"{name}_conv5")(layers.Concatenate(name=f"{name}_cat5")(feats))
    y = layers.Rescaling(RESIDUAL_SCALE, name=f"{name}_scale")(y)
    return layers.Add(name=f"{name}_add")([x, y])


def _rrdb(x, num_feat: int, num_grow_ch: int, name: str):
    """Residual-in-residual dense block: three dense blocks, outer residual scaled by 0.2."""
    y = x
    for i in range(1, 4):
        y = _residual_dense_block(y, num_feat, num_grow_ch, f"{name}_rdb{i}")
    y = layers.Rescaling(RESIDUAL_SCALE, name=f"{name}_scale")(y)
    return layers.Add(name=f"{name}_add")([x, y])


def build_rrdbnet(scale: int = 4, num_feat: int = 64, num_block: int = 23, num_grow_ch: int = 32,
                  num_in_ch: int = 1, num_out_ch: int = 1, global_residual: bool = False,
                  name: str = "rrdbnet") -> keras.Model:
    """Build the RRDB generator (untrained). ``scale`` must be 2 or 4."""
    if scale not in (2, 4):
        raise ValueError(f"RRDBNet scale must be 2 or 4, got {scale!r}.")
    for arg, val in (("num_feat", num_feat), ("num_block", num_block),
                     ("num_grow_ch", num_grow_ch), ("num_in_ch", num_in_ch),
                     ("num_out_ch", num_out_ch)):
        if not isinstance(val, int) or val < 1:
            raise ValueError(f"RRDBNet {arg} must be a positive integer, got {val!r}.")
    if global_residual and num_in_ch != num_out_ch:
        raise ValueError("global_residual needs num_in_ch == num_out_ch.")

    inp = keras.Input(shape=(None, None, num_in_ch), name="lr")
    feat = layers.Conv2D(num_feat, 3, padding="same", kernel_initializer=_init(),
                         name="conv_first")(inp)
    body = feat
    for b in range(num_block):
        body = _rrdb(body, num_feat, num_grow_ch, f"rrdb{b}")
    body = layers.Conv2D(num_feat, 3, padding="same", kernel_initializer=_init(),
                         name="conv_body")(body)
    x = layers.Add(name="body_add")([feat, body])
    for i in range(1, (2 if scale == 4 else 1) + 1):
        x = layers.UpSampling2D(2, interpolation="nearest", name=f"up{i}")(x)
        x = layers.Conv2D(num_feat, 3, padding="same", kernel_initializer=_init(),
                          name=f"conv_up{i}")(x)
        x = _lrelu(x, f"lrelu_up{i}")
    x = layers.Conv2D(num_feat, 3, padding="same", kernel_initializer=_init(), name="conv_hr")(x)
    x = _lrelu(x, "lrelu_hr")
    out = layers.Conv2D(num_out_ch, 3, padding="same", kernel_initializer=_init(),
                        name="conv_last")(x)
    if global_residual:
        skip = layers.UpSampling2D(scale, interpolation="bicubic", name="skip_bicubic")(inp)
        out = layers.Add(name="global_add")([out, skip])
    return keras.Model(inp, out, name=name)
