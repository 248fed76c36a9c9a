"""Temperature scaling (Guo et al., "On Calibration of Modern Neural Networks", ICML 2017).

One scalar ``T > 0`` divides the logits: ``p = softmax(z / T)``. It is fitted on held-out
(validation) logits by minimising the negative log-likelihood; accuracy is unchanged because the
argmax is. ``T > 1`` softens an over-confident model.
"""
from __future__ import annotations

import numpy as np

__all__ = ["softmax", "nll", "fit_temperature", "T_BOUNDS"]

T_BOUNDS = (0.05, 20.0)


def softmax(logits, temperature: float = 1.0) -> np.ndarray:
    z = np.asarray(logits, np.float64) / float(temperature)
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def nll(logits, y_true, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of the integer labels under ``softmax(logits / T)``."""
    z = np.asarray(logits, np.float64) / float(temperature)
    z = z - z.max(axis=-1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    return float(-logp[np.arange(len(z)), np.asarray(y_true, np.int64)].mean())


def fit_temperature(logits, y_true, bounds: tuple[float, float] = T_BOUNDS) -> float:
    """The NLL-minimising temperature, by golden-section search over log T (NLL is unimodal
    in T for fixed logits in practice). Returns 1.0 for empty input."""
    logits = np.asarray(logits, np.float64)
    if logits.ndim != 2 or len(logits) != len(y_true):
        raise ValueError(f"logits {logits.shape} must be (N, K) with N = len(y_true).")
    if not len(logits):
        return 1.0
    lo, hi = np.log(bounds[0]), np.log(bounds[1])
    g = (np.sqrt(5) - 1) / 2
    a, b = hi - g * (hi - lo), lo + g * (hi - lo)
    fa, fb = nll(logits, y_true, np.exp(a)), nll(logits, y_true, np.exp(b))
    for _ in range(80):
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - g * (hi - lo)
            fa = nll(logits, y_true, np.exp(a))
        else:
            lo, a, fa = a, b, fb
            b = lo + g * (hi - lo)
            fb = nll(logits, y_true, np.exp(b))
    return float(np.exp((lo + hi) / 2))
