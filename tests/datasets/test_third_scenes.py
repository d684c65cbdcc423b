"""The third digit-scene generator (mmcam.datasets.third_scenes)."""
from __future__ import annotations

import numpy as np

from mmcam.datasets.digit_scenes import PHOTOS, digit_splits
from mmcam.datasets.other_scenes import OTHER_PICTURES, TEXTURES
from mmcam.datasets.third_scenes import KINDS, THIRD_PICTURES, ThirdSceneGenerator


def test_third_generator_is_deterministic_for_a_seed():
    a, b = ThirdSceneGenerator(seed=3), ThirdSceneGenerator(seed=3)
    for _ in range(4):
        sa, sb = a.scene(), b.scene()
        assert np.array_equal(sa.image, sb.image) and np.array_equal(sa.boxes, sb.boxes)
        assert np.array_equal(sa.labels, sb.labels) and sa.photo == sb.photo
    assert not np.array_equal(ThirdSceneGenerator(seed=4).scene().image,
                              ThirdSceneGenerator(seed=3).scene().image)


def test_third_generator_uses_test_digits_and_backgrounds_no_other_generator_draws():
    test_digits = set(digit_splits()['test'].tolist())
    elsewhere = {p for ps in PHOTOS.values() for p in ps} | set(OTHER_PICTURES) | set(TEXTURES)
    gen = ThirdSceneGenerator(seed=0)
    seen = set()
    for _ in range(40):
        sc = gen.scene()
        assert sc.image.shape == (256, 256, 3) and sc.image.dtype == np.uint8
        assert len(sc.labels) == 1 and set(sc.digit_ids) <= test_digits
        assert sc.photo in KINDS + THIRD_PICTURES and sc.photo not in elsewhere
        seen.add(sc.photo)
    assert len(seen) >= 6  # procedural kinds and pictures are both drawn


def test_third_generator_boxes_hold_the_digit():
    """On a flat background the pixels the digit changes strongly lie in its box (give or take
    a shadow or a defocused edge), and the box holds many of them."""
    gen = ThirdSceneGenerator(seed=1)
    drawn = gen.background
    flat = np.full((256, 256, 3), (90, 140, 100), np.float32)

    def flat_background():
        drawn()  # the same random draws as a real background, so the scenes stay varied
        return flat.copy(), 'flat'

    gen.background = flat_background
    for _ in range(12):
        sc = gen.scene()
        x1, y1, x2, y2 = sc.boxes[0]
        assert 0 <= x1 < x2 <= 256 and 0 <= y1 < y2 <= 256
        assert max(x2 - x1, y2 - y1) <= 0.6 * 256 + 4
        changed = np.abs(sc.image.astype(int) - flat.astype(int)).max(-1) > 60
        ys, xs = np.nonzero(changed)
        inside = (xs >= x1 - 8) & (xs < x2 + 8) & (ys >= y1 - 8) & (ys < y2 + 8)
        assert inside.mean() >= 0.95
        assert inside.sum() >= 20
