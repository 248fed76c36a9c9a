"""Retrieval vectors from the classifier: its pooled features before the head, L2-normalised.

The classifier's forward pass already returns the global-average-pooled features
(``avg_pool``, :data:`core.classifier.ood.FEATURE_LAYER`) for its out-of-distribution check;
the same vector, flip-averaged when the card says so, is the case's embedding. Cosine
similarity is then the inner product of two embeddings.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from core.classifier.ood import FEATURE_LAYER
from core.errors import ModelCardError

__all__ = ["EMBED_LAYER", "embed_images", "embed_prepared", "l2_normalise", "embedding_dim"]

EMBED_LAYER = FEATURE_LAYER


def l2_normalise(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (float32); all-zero rows stay zero."""
    v = np.asarray(vectors, np.float32)
    norms = np.linalg.norm(v, axis=-1, keepdims=True)
    return (v / np.where(norms > 0, norms, 1.0)).astype(np.float32)


def _layer_index(clf) -> int:
    try:
        return list(clf.feature_layers).index(EMBED_LAYER)
    except ValueError:
        raise ModelCardError(f"Classifier {clf.version} has no pooled feature layer "
                             f"{EMBED_LAYER!r} to take retrieval embeddings from.") from None


def embedding_dim(clf) -> int:
    """Length of the classifier's embeddings (an ensemble's: its members' summed)."""
    return clf.feature_dim(EMBED_LAYER)


def embed_prepared(clf, x: np.ndarray, batch_size: int = 32) -> np.ndarray:
    """Preprocessed batch (N, S, S, C) -> embeddings (N, D) float32, unit length."""
    i = _layer_index(clf)
    if len(x) == 0:
        return np.zeros((0, embedding_dim(clf)), np.float32)
    _, feats = clf.forward_batch(np.asarray(x, np.float32), batch_size)
    return l2_normalise(feats[i])


def embed_images(clf, images: Sequence[np.ndarray], batch_size: int = 32) -> np.ndarray:
    """Scans (float [0, 1] or uint8, any size) -> embeddings (N, D), through the classifier's
    own preprocessing (head crop, resize, normalisation)."""
    if not len(images):
        return np.zeros((0, embedding_dim(clf)), np.float32)
    return embed_prepared(clf, np.stack([clf.prepare(img)[0] for img in images]), batch_size)
