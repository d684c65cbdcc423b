"""The per-map figures of the dataset evaluation (mmcam/evaluation/scores.py)."""
import math

import numpy as np
import pytest

from mmcam.cams.localisation import peak_in_box
from mmcam.evaluation.metric import summarise
from mmcam.evaluation.scores import (box_mask, energy_ratio, match_detections, mean_ci,
                                     pointing_hit, spearman)


def test_pointing_counts_like_the_old_check_on_whole_pixel_boxes():
    """Pixel centres inside the box (+- t) is the old ``x1 - t <= x < x2 + t`` for boxes on
    whole pixels, at every peak position and tolerance."""
    box = (10, 20, 30, 41)
    for t in (0, 4, 15):
        for x in range(0, 50, 1):
            for y in range(5, 60, 3):
                cam = np.zeros((64, 64), np.float32)
                cam[y, x] = 1
                assert pointing_hit(cam, [box], t) == peak_in_box(cam, box, t), (x, y, t)


def test_energy_ratio_is_one_for_a_uniform_map_and_grows_inside_the_box():
    cam = np.ones((40, 40), np.float32)
    assert energy_ratio(cam, [(0, 0, 10, 10)]) == pytest.approx(1.0)
    cam[:10, :10] = 3
    assert energy_ratio(cam, [(0, 0, 10, 10)]) > 2
    assert math.isnan(energy_ratio(np.zeros((4, 4)), [(0, 0, 2, 2)]))
    assert box_mask([(0.5, 0.5, 1.2, 1.2)], (4, 4)).sum() == 4  # every pixel a box touches


def test_detections_match_their_own_class_by_iou_greedily():
    gt = np.array([[0, 0, 10, 10], [20, 20, 30, 30]], float)
    dets = np.array([[1, 1, 10, 10], [0, 0, 9, 9], [20, 20, 30, 30], [50, 50, 60, 60]], float)
    # The second detection overlaps box 0 too, but box 0 is taken; the third has the wrong
    # class for box 1; the last overlaps nothing.
    assert match_detections(dets, np.array([0, 0, 2, 1]), gt, np.array([0, 1])) == \
        [0, -1, -1, -1]
    assert match_detections(dets[2:3], np.array([1]), gt, np.array([0, 1])) == [1]


def test_spearman_and_interval():
    a = np.arange(100, dtype=float).reshape(10, 10)
    assert spearman(a, a ** 3) == pytest.approx(1.0)
    assert spearman(a, -a) == pytest.approx(-1.0)
    assert math.isnan(spearman(a, np.ones_like(a)))
    ci = mean_ci([1, 0, 1, 1, float('nan')])
    assert ci['n'] == 4 and ci['mean'] == pytest.approx(0.75)
    # Student's t with 3 degrees of freedom: 3.182 * s / sqrt(n).
    assert ci['high'] - ci['mean'] == pytest.approx(3.1824 * 0.5 / 2, rel=1e-3)


def test_summary_pools_boxes_and_flags_a_failing_sanity_check():
    records = [dict(index=0, maps=dict(a=dict(boxes=2, peak_in_own_box=[1.0, 0.0],
                                              sanity_rho=[0.9, 0.8]),
                                       b=dict(boxes=2, peak_in_own_box=[1.0, 1.0],
                                              sanity_rho=[0.1, 0.2]))),
               dict(index=1, maps=dict(a=dict(boxes=1, peak_in_own_box=[1.0],
                                              sanity_rho=[0.7]),
                                       b=dict(boxes=1, peak_in_own_box=[0.0],
                                              sanity_rho=[0.0])))]
    s = summarise(records)
    assert s['a']['boxes'] == 3 and s['a']['peak_in_own_box']['mean'] == pytest.approx(2 / 3)
    assert s['a']['sanity'] == 'FAIL' and s['b']['sanity'] == 'pass'
    assert s['a']['images'] == 2
