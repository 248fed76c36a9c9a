"""Dice / IoU against hand-computed cases, the bootstrap interval, the mask box, and the
Grad-CAM localization scores."""
from __future__ import annotations

import numpy as np
import pytest

from core.segmentation.localization import localization_scores, summarise_localization
from core.segmentation.metrics import bootstrap_ci, dice, iou, mask_bbox


def _mask(shape, *boxes):
    m = np.zeros(shape, bool)
    for y0, y1, x0, x1 in boxes:
        m[y0:y1, x0:x1] = True
    return m


@pytest.mark.parametrize("pred, truth, d, j", [
    (_mask((4, 4)), _mask((4, 4)), 1.0, 1.0),                          # both empty
    (_mask((4, 4), (0, 2, 0, 2)), _mask((4, 4)), 0.0, 0.0),            # false positive only
    (_mask((4, 4)), _mask((4, 4), (0, 2, 0, 2)), 0.0, 0.0),            # missed tumour
    (_mask((4, 4), (0, 2, 0, 2)), _mask((4, 4), (0, 2, 0, 2)), 1.0, 1.0),
    (_mask((4, 4), (0, 2, 0, 2)), _mask((4, 4), (0, 2, 0, 1)), 2 * 2 / 6, 2 / 4),
    (_mask((4, 4), (0, 1, 0, 4)), _mask((4, 4), (0, 4, 0, 1)), 2 * 1 / 8, 1 / 7),
])
def test_dice_and_iou_hand_computed(pred, truth, d, j):
    assert dice(pred, truth) == pytest.approx(d)
    assert iou(pred, truth) == pytest.approx(j)
    assert dice(truth, pred) == pytest.approx(d)          # symmetric


def test_metrics_reject_different_shapes():
    with pytest.raises(ValueError, match="differ in shape"):
        dice(np.zeros((4, 4)), np.zeros((4, 5)))


def test_bootstrap_ci_brackets_the_mean():
    values = np.random.default_rng(1).uniform(0.5, 1.0, 200)
    lo, hi = bootstrap_ci(values, seed=0)
    assert lo < values.mean() < hi and hi - lo < 0.1
    assert bootstrap_ci([]) is None
    assert bootstrap_ci([0.7, 0.7, 0.7]) == pytest.approx([0.7, 0.7])


def test_mask_bbox_half_open():
    assert mask_bbox(_mask((10, 10), (2, 5, 3, 7))) == [3, 2, 7, 5]
    assert mask_bbox(_mask((10, 10))) is None


def test_localization_scores():
    mask = _mask((128, 128), (40, 60, 40, 60))             # at 256²: rows/cols 80-120
    heat = np.zeros((64, 64), np.float32)
    heat[25, 25] = 1.0                                      # peak inside the tumour
    score = localization_scores(heat, mask)
    assert score["pointing_hit"] is True and score["energy_in_box"] == pytest.approx(1.0)
    heat2 = np.zeros((64, 64), np.float32)
    heat2[5, 5] = 1.0                                       # far corner
    heat2[25, 25] = 0.5
    score2 = localization_scores(heat2, mask)
    assert score2["pointing_hit"] is False
    assert score2["energy_in_box"] == pytest.approx(0.5 / 1.5, abs=0.02)
    assert localization_scores(heat, _mask((128, 128))) == {"pointing_hit": None,
                                                            "energy_in_box": None}
    summary = summarise_localization([score, score2, {"pointing_hit": None,
                                                      "energy_in_box": None}])
    assert summary["n"] == 2 and summary["pointing_game"] == 0.5


def test_postprocess_keeps_the_largest_component():
    from core.segmentation.inference import postprocess_mask

    m = _mask((20, 20), (2, 8, 2, 8), (15, 17, 15, 17))         # 36-pixel blob + 4-pixel island
    kept = postprocess_mask(m, "largest_component")
    assert kept.sum() == 36 and not kept[15:17, 15:17].any()
    assert postprocess_mask(m, "none").sum() == 40
    assert not postprocess_mask(_mask((5, 5)), "largest_component").any()
    with pytest.raises(ValueError, match="postprocess"):
        postprocess_mask(m, "smooth")


def test_hflip_tta_is_mirror_consistent():
    """With test-time flipping, the map of a mirrored scan is the mirror of the scan's map."""
    import keras

    from core.models.unet import TINY_CONFIG, build_unet
    from core.segmentation.data import preprocessing_config
    from core.segmentation.inference import Segmenter

    keras.utils.set_random_seed(1)
    card = {"version": "t", "input_size": 32, "network": dict(TINY_CONFIG),
            "preprocessing": preprocessing_config(32, head_crop=False, tta="hflip")}
    seg = Segmenter(build_unet(**TINY_CONFIG), card)
    img = np.random.default_rng(0).integers(0, 255, (32, 32)).astype(np.uint8)
    a, b = seg.probabilities([img, img[:, ::-1]])
    assert np.allclose(a, b[:, ::-1], atol=1e-5)
