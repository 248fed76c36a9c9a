"""Where each training image came from, and how often an epoch shows it.

The brain MRI data set merges sources that differ in look as much as in class: almost every
tumour image is a square 512² slice, most notumor images are smaller, non-square (padding bars
after the resize to 256²) or upscaled (blur). Its ``train_manifest.csv`` records each file's
source size and whether it was upscaled. ``--source-oversample K`` repeats, K times per epoch,
the images of a class whose source look is rare in that class (a padded or upscaled meningioma,
a plain notumor scan), so that the look stops predicting the class.

numpy and csv only: the Training page imports it without Keras.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = ["SOURCE_MANIFEST_NAME", "MINORITY_SHARE", "PLAIN", "MARKED", "find_source_manifest",
           "source_groups", "source_repeats"]

SOURCE_MANIFEST_NAME = "train_manifest.csv"
#: a class's source group below this share of it is repeated (``source_repeats``)
MINORITY_SHARE = 0.25
PLAIN, MARKED = "plain", "padded or upscaled"


def find_source_manifest(data: str | Path) -> Path | None:
    """The data set's per-file source manifest (``train_manifest.csv`` in the folder or beside
    it, as ``../shared/datasets/brain-mri`` has it), or None."""
    root = Path(data)
    for cand in (root / SOURCE_MANIFEST_NAME, root.parent / SOURCE_MANIFEST_NAME):
        if cand.is_file():
            return cand
    return None


def source_groups(files: Sequence[Path], manifest: str | Path) -> list[str | None]:
    """Each file's source group from the manifest (columns ``file`` = ``<class>/<name>``,
    ``source_width``, ``source_height``, ``upscaled``): ``"plain"`` for a square source that was
    not upscaled (no padding bars, no upscaling blur after the data set's resize to 256²),
    ``"padded or upscaled"`` otherwise; None for a file the manifest does not list. These are
    the marks the data set's README names as its source bias (most notumor images carry them,
    almost no tumour image does)."""
    import csv

    try:
        with open(manifest, newline="") as fh:
            rows = list(csv.DictReader(fh))
    except OSError as err:
        raise ValueError(f"source manifest {manifest}: {err.strerror or err}.") from None
    need = {"file", "source_width", "source_height", "upscaled"}
    if not rows or not need <= set(rows[0]):
        raise ValueError(f"source manifest {manifest}: needs the columns {sorted(need)}.")
    by_file = {}
    for r in rows:
        try:
            w, h = int(r["source_width"]), int(r["source_height"])
        except (TypeError, ValueError):
            continue
        up = str(r["upscaled"]).strip().lower() in ("true", "1", "yes")
        by_file[r["file"].replace("\\", "/")] = PLAIN if (w == h and not up) else MARKED
    return [by_file.get(f"{Path(f).parent.name}/{Path(f).name}") for f in files]


def source_repeats(labels: np.ndarray, groups: Sequence[str | None], factor: int
                   ) -> tuple[np.ndarray, dict]:
    """How often each training image goes into an epoch: ``factor`` times for images of a
    source group that is under ``MINORITY_SHARE`` of its class (a plain-looking notumor scan,
    a padded or upscaled meningioma), once otherwise; files with no group count once. Returns
    (repeats, {class index: {group: [images, repeats]}}) for the card."""
    if factor < 1:
        raise ValueError(f"--source-oversample must be at least 1, got {factor}.")
    labels = np.asarray(labels)
    rep = np.ones(len(labels), np.int64)
    summary: dict = {}
    for c in np.unique(labels):
        in_c = labels == c
        known = [g for g, m in zip(groups, in_c) if m and g is not None]
        for g in sorted(set(known)):
            n_g = known.count(g)
            r = factor if n_g < MINORITY_SHARE * len(known) else 1
            rep[in_c & np.array([x == g for x in groups])] = r
            summary.setdefault(int(c), {})[g] = [n_g, r]
    return rep, summary
