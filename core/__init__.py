"""MedScan core: scan loading, models, training, metrics and storage.

Plain Python + Keras/TensorFlow. This package never imports streamlit; everything here is
usable from the CLI (``python -m core``) and from tests.
"""
from __future__ import annotations

__all__ = ["__version__"]
__version__ = "0.1.0"
