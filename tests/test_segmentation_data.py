"""Pairs, the split by figshare number (no overlap, margin kept, windows contiguous), the
preprocessing round trip and augmentation that keeps image and mask aligned."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from core.segmentation.data import (augment_pair, index_split, list_pairs, load_pairs, prepare,
                                    prepare_mask, preprocessing_config, restore)


def _synthetic_index():
    """Three classes in runs of figshare numbers with gaps, like the real data set."""
    rng = np.random.default_rng(0)
    index, labels = [], []
    for c, (start, n) in enumerate([(11, 300), (700, 250), (1800, 200)]):
        numbers = start + np.cumsum(rng.integers(1, 4, n))
        index += list(numbers)
        labels += [c] * n
    return np.array(index), np.array(labels)


@pytest.mark.parametrize("margin", [0, 40])
def test_index_split_no_overlap_and_margin(margin):
    index, labels = _synthetic_index()
    tr, va, te = index_split(index, labels, val_fraction=0.1, test_fraction=0.15, margin=margin)
    assert not (set(tr) & set(va)) and not (set(tr) & set(te)) and not (set(va) & set(te))
    for c in np.unique(labels):
        for window, frac in ((va, 0.1), (te, 0.15)):
            w = window[labels[window] == c]
            n = int((labels == c).sum())
            assert len(w) == round(n * frac)
            lo, hi = index[w].min(), index[w].max()
            same = np.flatnonzero(labels == c)
            # contiguous: every slice of the class inside the window's range is in the window
            inside = same[(index[same] >= lo) & (index[same] <= hi)]
            assert set(inside) == set(w)
            # margin: no training slice of the class within `margin` numbers of the window
            t = tr[labels[tr] == c]
            gap = np.minimum(np.abs(index[t] - lo), np.abs(index[t] - hi))
            assert gap.min() > margin
            assert not np.any((index[t] >= lo) & (index[t] <= hi))
    # test = lowest numbers of each class, validation = highest
    for c in np.unique(labels):
        assert index[te][labels[te] == c].max() < index[va][labels[va] == c].min()
    dropped = len(index) - len(tr) - len(va) - len(te)
    assert (dropped > 0) == (margin > 0)


def test_index_split_rejects_bad_fractions():
    index, labels = _synthetic_index()
    with pytest.raises(ValueError, match="below 1"):
        index_split(index, labels, val_fraction=0.5, test_fraction=0.5)


def test_list_pairs_fixture(data_dir):
    data = list_pairs(data_dir / "brain-mri-seg")
    assert data.classes == ["glioma", "meningioma", "pituitary"]
    assert len(data) == 9 and data.counts() == {"glioma": 3, "meningioma": 3, "pituitary": 3}
    assert [m.name for m in data.masks] == [i.name for i in data.images]
    assert data.index[0] == 735                                   # from manifest.csv
    x, y = load_pairs(data, [0, 3], preprocessing_config(64))
    assert x.shape == y.shape == (2, 64, 64) and x.dtype == np.uint8
    assert set(np.unique(y)) == {0, 1} and 0 < y.mean() < 0.2


def test_list_pairs_missing_mask(tmp_path):
    (tmp_path / "images" / "a").mkdir(parents=True)
    (tmp_path / "masks" / "a").mkdir(parents=True)
    cv2.imwrite(str(tmp_path / "images" / "a" / "x12.png"), np.zeros((8, 8), np.uint8))
    with pytest.raises(ValueError, match="no mask"):
        list_pairs(tmp_path)


def _head(size=200, width=None):
    """A bright ellipse 'head' on black (wider than tall when ``width``), with a tumour disc."""
    w = width or size
    img = np.zeros((size, w), np.uint8)
    cv2.ellipse(img, (w // 2, size // 2), (w * 3 // 8, size * 3 // 8), 0, 0, 360, 120, -1)
    mask = np.zeros_like(img, bool)
    cv2.circle(img, (w // 2 + 20, size // 2 - 10), 15, 240, -1)
    mask[img == 240] = True
    return img, mask


def test_prepare_restore_round_trip():
    img, mask = _head(200, 260)
    cfg = preprocessing_config(64)
    small, box = prepare(img, cfg)
    assert small.shape == (64, 64)
    assert box.x0 > 0 and box.x1 < 260                              # head crop happened
    small_mask = prepare_mask(mask, box, 64)
    back = restore(small_mask.astype(np.float32), box, img.shape) >= 0.5
    inter = (back & mask).sum()
    assert 2 * inter / (back.sum() + mask.sum()) > 0.9              # Dice of the round trip
    assert back.shape == img.shape


def test_augmentation_moves_mask_with_image():
    """The 'image' is the mask drawn bright: after augmentation the bright pixels and the mask
    must still coincide (one affine map for both)."""
    rng = np.random.default_rng(3)
    for seed in range(20):
        mask = np.zeros((64, 64), np.uint8)
        cv2.circle(mask, (int(rng.integers(20, 44)), int(rng.integers(20, 44))), 8, 1, -1)
        img = (mask * 200 + 20).astype(np.uint8)
        aug_img, aug_mask = augment_pair(img, mask, np.random.default_rng(seed))
        assert aug_mask.dtype == np.uint8 and set(np.unique(aug_mask)) <= {0, 1}
        bright = aug_img > aug_img.max() * 0.6
        if aug_mask.sum() == 0:
            continue
        overlap = (bright & (aug_mask > 0)).sum() / max(bright.sum(), aug_mask.sum())
        assert overlap > 0.8, seed
