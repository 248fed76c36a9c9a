"""Degradation models (HR → LR) and the reference upscalers.

Two ways a low-resolution image is made (:data:`DEGRADATIONS`):

- ``bicubic``: Pillow's bicubic resampling (Keys kernel a = -0.5, widened by the scale factor
  when downscaling, i.e. anti-aliased like MATLAB's ``imresize``, which SR papers use);
- ``kspace``: how an MRI slice really becomes low-resolution. The scanner samples less of
  k-space (the 2-D Fourier transform), so the LR image is the inverse transform of the centred
  1/scale × 1/scale block of the HR image's spectrum (optionally tapered by a Tukey or Hamming
  window against Gibbs ringing), its magnitude, at 1/scale the size. Rician noise at a chosen
  SNR (:func:`add_rician_noise`) models the magnitude image of a noisy complex signal.

:func:`zero_filled_upscale` is the matching reference for ``kspace``: the LR spectrum padded
with zeros back to the HR size (sinc interpolation, what a scanner console shows when asked for
a larger matrix). Images are float32 in [0, 1], ``H×W`` or ``H×W×C``; pure numpy/Pillow.
"""
from __future__ import annotations

import numpy as np
from PIL import Image

__all__ = ["resize_bicubic", "bicubic_upscale", "degrade", "crop_to_multiple", "as_float01",
           "kspace_downsample", "zero_filled_upscale", "add_rician_noise", "rician_sigma",
           "DEGRADATIONS", "KSPACE_WINDOWS", "describe_degradation"]

DEGRADATIONS = ("bicubic", "kspace")
KSPACE_WINDOWS = (None, "tukey", "hamming")
#: Tukey window taper: the outer 25 % of each k-space axis on each side (a common choice that
#: removes most ringing while keeping the resolution of the central 50 %).
TUKEY_ALPHA = 0.5
#: Pixels above this fraction of the image's maximum are "signal" for the SNR definition.
SIGNAL_FRACTION = 0.1


def as_float01(image: np.ndarray) -> np.ndarray:
    """uint8/uint16 → float32 [0, 1]; float input is clipped to [0, 1]."""
    arr = np.asarray(image)
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / 255.0
    if arr.dtype == np.uint16:
        return arr.astype(np.float32) / 65535.0
    return np.clip(arr.astype(np.float32), 0.0, 1.0)


def _resize_channel(ch: np.ndarray, size_wh: tuple[int, int]) -> np.ndarray:
    return np.asarray(Image.fromarray(np.ascontiguousarray(ch, dtype=np.float32), mode="F")
                      .resize(size_wh, Image.Resampling.BICUBIC), dtype=np.float32)


def resize_bicubic(image: np.ndarray, height: int, width: int, *, clip: bool = True) -> np.ndarray:
    """Bicubic resize of an ``H×W`` or ``H×W×C`` float image to ``height×width``."""
    img = np.asarray(image, dtype=np.float32)
    size = (int(width), int(height))
    if img.ndim == 2:
        out = _resize_channel(img, size)
    elif img.ndim == 3:
        out = np.stack([_resize_channel(img[..., c], size) for c in range(img.shape[2])], axis=-1)
    else:
        raise ValueError(f"expected an H×W or H×W×C image, got shape {img.shape}")
    return np.clip(out, 0.0, 1.0) if clip else out


def bicubic_upscale(image: np.ndarray, scale: int) -> np.ndarray:
    """The reference every comparison shows: bicubic upscaling by an integer ``scale``."""
    h, w = np.asarray(image).shape[:2]
    return resize_bicubic(image, h * scale, w * scale)


def crop_to_multiple(image: np.ndarray, scale: int) -> np.ndarray:
    """Crop the bottom/right edge so that height and width are multiples of ``scale``."""
    h, w = image.shape[:2]
    return image[: h - h % scale, : w - w % scale]


def degrade(hr: np.ndarray, scale: int, *, blur_sigma: float = 0.0, noise_sigma: float = 0.0,
            rng: np.random.Generator | None = None, kind: str = "bicubic",
            window: str | None = None, rician_snr: float | None = None) -> np.ndarray:
    """Make a low-resolution image from ``hr``, clipped to [0, 1]. ``kind="bicubic"`` (the
    default, the plain degradation of the SR literature): optional Gaussian blur
    (``blur_sigma`` in HR pixels), bicubic downscaling by ``scale``, optional additive Gaussian
    noise (``noise_sigma`` on the [0, 1] scale). ``kind="kspace"``: :func:`kspace_downsample`
    with ``window``. Either may add Rician noise at ``rician_snr`` (:func:`add_rician_noise`).
    ``hr`` must have sides divisible by ``scale`` (see :func:`crop_to_multiple`)."""
    if kind not in DEGRADATIONS:
        raise ValueError(f"Unknown degradation {kind!r}; expected one of {DEGRADATIONS}.")
    img = np.asarray(hr, dtype=np.float32)
    h, w = img.shape[:2]
    if h % scale or w % scale:
        raise ValueError(f"HR size {h}×{w} is not divisible by scale {scale}; crop it first.")
    if kind == "kspace":
        lr = kspace_downsample(img, scale, window=window)
        if rician_snr:
            lr = add_rician_noise(lr, rician_snr, rng)
        return np.clip(lr, 0.0, 1.0).astype(np.float32)
    if blur_sigma > 0:
        import cv2

        img = cv2.GaussianBlur(img, (0, 0), sigmaX=float(blur_sigma),
                               borderType=cv2.BORDER_REFLECT_101)
    lr = resize_bicubic(img, h // scale, w // scale, clip=False)
    if noise_sigma > 0:
        rng = rng if rng is not None else np.random.default_rng()
        lr = lr + rng.normal(0.0, noise_sigma, lr.shape).astype(np.float32)
    if rician_snr:
        lr = add_rician_noise(np.clip(lr, 0.0, None), rician_snr, rng)
    return np.clip(lr, 0.0, 1.0).astype(np.float32)


def _window_1d(n: int, window: str | None) -> np.ndarray:
    if window is None:
        return np.ones(n)
    if window == "hamming":
        return np.hamming(n)
    if window == "tukey":
        from scipy.signal.windows import tukey

        return tukey(n, TUKEY_ALPHA)
    raise ValueError(f"Unknown k-space window {window!r}; expected one of {KSPACE_WINDOWS}.")


def _per_channel(fn, img: np.ndarray) -> np.ndarray:
    if img.ndim == 2:
        return fn(img)
    return np.stack([fn(img[..., c]) for c in range(img.shape[2])], axis=-1)


def _shift_ramp(n: int, shift: float) -> np.ndarray:
    """Phase ramp over a centred (fftshift-ed) axis of ``n`` frequencies that moves the image
    by ``-shift`` pixels: sample ``i`` of the result is the input at ``i + shift``."""
    f = np.fft.fftshift(np.fft.fftfreq(n)) * n
    return np.exp(2j * np.pi * f * shift / n)


def _centre(big: int, small: int) -> int:
    """First index of the centred ``small`` block inside a centred spectrum of ``big``."""
    return big // 2 - small // 2


def kspace_downsample(hr: np.ndarray, scale: int, *, window: str | None = None) -> np.ndarray:
    """The LR image an MRI scanner would reconstruct from the central 1/``scale`` of k-space
    per axis: centred crop of ``fft2(hr)``, optional ``window``, inverse transform at the
    smaller size, magnitude; intensities keep their scale (divided by ``scale²``, the ratio of
    the transforms' sizes). Not clipped (a window or noise may leave values just outside
    [0, 1]). ``hr`` sides must be divisible by ``scale``.

    Pixel grid: both matrices cover the same field of view with pixel centres half a pixel in
    from its edges (as DICOM places them), so LR pixel ``m`` is centred on HR position
    ``m·scale + (scale − 1)/2``: the same grid as bicubic downscaling. A bare DFT crop would
    sample at ``m·scale`` instead, 1.5 HR pixels off at ×4; a phase ramp moves it."""
    img = np.asarray(hr, dtype=np.float64)
    h, w = img.shape[:2]
    if h % scale or w % scale:
        raise ValueError(f"HR size {h}×{w} is not divisible by scale {scale}; crop it first.")
    lh, lw = h // scale, w // scale
    delta = (scale - 1) / 2
    ramp = np.outer(_shift_ramp(h, delta), _shift_ramp(w, delta))
    win = np.outer(_window_1d(lh, window), _window_1d(lw, window))
    top, left = _centre(h, lh), _centre(w, lw)

    def one(ch: np.ndarray) -> np.ndarray:
        k = np.fft.fftshift(np.fft.fft2(ch)) * ramp
        crop = k[top:top + lh, left:left + lw] * win
        return np.abs(np.fft.ifft2(np.fft.ifftshift(crop))) / (scale * scale)

    return _per_channel(one, img).astype(np.float32)


def zero_filled_upscale(lr: np.ndarray, scale: int) -> np.ndarray:
    """Sinc interpolation: the LR spectrum zero-padded to ``scale`` × its size, inverse
    transform, magnitude, clipped to [0, 1]. The reference an SR model should beat under the
    ``kspace`` degradation (bicubic is the reference under ``bicubic``)."""
    img = np.asarray(lr, dtype=np.float64)
    lh, lw = img.shape[:2]
    h, w = lh * scale, lw * scale
    delta = (scale - 1) / 2     # the LR grid of :func:`kspace_downsample`, moved back
    ramp = np.outer(_shift_ramp(h, -delta), _shift_ramp(w, -delta))
    top, left = _centre(h, lh), _centre(w, lw)

    def one(ch: np.ndarray) -> np.ndarray:
        k = np.fft.fftshift(np.fft.fft2(ch))
        big = np.zeros((h, w), complex)
        big[top:top + lh, left:left + lw] = k
        return np.abs(np.fft.ifft2(np.fft.ifftshift(big * ramp))) * (scale * scale)

    return np.clip(_per_channel(one, img), 0.0, 1.0).astype(np.float32)


def rician_sigma(image: np.ndarray, snr: float) -> float:
    """The noise σ for ``snr`` = mean signal / σ, the signal being the pixels above
    :data:`SIGNAL_FRACTION` of the image's maximum (the head, not the air around it)."""
    img = np.asarray(image, dtype=np.float64)
    if snr <= 0:
        raise ValueError(f"SNR must be positive, got {snr}.")
    peak = float(img.max())
    fg = img[img > SIGNAL_FRACTION * peak] if peak > 0 else img
    return float(fg.mean() if fg.size else 0.0) / float(snr)


def add_rician_noise(image: np.ndarray, snr: float, rng: np.random.Generator | None = None
                     ) -> np.ndarray:
    """Magnitude of the image plus complex Gaussian noise (σ from :func:`rician_sigma` in both
    the real and the imaginary channel): Rician-distributed, Rayleigh where there is no
    signal. Not clipped."""
    rng = rng if rng is not None else np.random.default_rng()
    img = np.asarray(image, dtype=np.float64)
    sigma = rician_sigma(img, snr)
    real = img + rng.normal(0.0, sigma, img.shape)
    imag = rng.normal(0.0, sigma, img.shape)
    return np.hypot(real, imag).astype(np.float32)


def describe_degradation(kind: str = "bicubic", *, window: str | None = None,
                         rician_snr: float | None = None, blur_sigma: float = 0.0,
                         noise_sigma: float = 0.0) -> str:
    """The degradation in words, for pages, cards and reports."""
    if kind == "kspace":
        text = "k-space truncation (central 1/scale of the spectrum"
        text += f", {window} window)" if window else ", no window)"
    else:
        text = "bicubic downscaling"
        if blur_sigma:
            text = f"Gaussian blur σ {blur_sigma:g} px + " + text
        if noise_sigma:
            text += f" + Gaussian noise σ {noise_sigma:g}"
    if rician_snr:
        text += f" + Rician noise at SNR {rician_snr:g}"
    return text
