"""The second digit-scene generator (mmcam.datasets.other_scenes) and the varied training scenes."""
from __future__ import annotations

import numpy as np

from mmcam.datasets.digit_scenes import (BOX_THRESHOLD, PHOTOS, DigitSceneGenerator,
                                         digit_splits)
from mmcam.datasets.other_scenes import OTHER_PICTURES, TEXTURES, OtherSceneGenerator


def test_second_generator_is_deterministic_for_a_seed():
    a, b = OtherSceneGenerator(seed=3), OtherSceneGenerator(seed=3)
    for _ in range(4):
        sa, sb = a.scene(), b.scene()
        assert np.array_equal(sa.image, sb.image) and np.array_equal(sa.boxes, sb.boxes)
        assert np.array_equal(sa.labels, sb.labels) and sa.photo == sb.photo
    assert not np.array_equal(OtherSceneGenerator(seed=4).scene().image,
                              OtherSceneGenerator(seed=3).scene().image)


def test_second_generator_uses_test_digits_and_its_own_backgrounds_only():
    test_digits = set(digit_splits()['test'].tolist())
    used_photos = {p for ps in PHOTOS.values() for p in ps}
    gen = OtherSceneGenerator(seed=0)
    seen = set()
    for _ in range(40):
        sc = gen.scene()
        assert sc.image.shape == (224, 224, 3) and sc.image.dtype == np.uint8
        assert len(sc.labels) == 1 and set(sc.digit_ids) <= test_digits
        assert sc.photo in TEXTURES + OTHER_PICTURES and sc.photo not in used_photos
        seen.add(sc.photo)
    assert len(seen) >= 6  # both textures and pictures are drawn


def test_second_generator_boxes_are_tight_around_the_digit():
    """Box = the pixels the digit (fill and outline) covers: on a flat grey-green background
    the pixels the digit changes span the box, give or take its soft edge."""
    gen = OtherSceneGenerator(seed=1)
    drawn = gen.background
    flat = np.full((224, 224, 3), (90, 140, 100), np.float32)

    def flat_background():
        drawn()  # the same random draws as a real background, so the scenes stay varied
        return flat.copy(), 'flat'

    gen.background = flat_background
    for _ in range(12):
        sc = gen.scene()
        x1, y1, x2, y2 = sc.boxes[0]
        assert 0 <= x1 < x2 <= 224 and 0 <= y1 < y2 <= 224
        assert 0.3 * 224 * 0.3 <= max(x2 - x1, y2 - y1) <= 0.7 * 224 + 8  # 30-70 % squares
        changed = np.abs(sc.image.astype(int) - flat.astype(int)).max(-1) > 8
        ys, xs = np.nonzero(changed)
        # The box is not looser than what changed (3 px: where the colour gradient passes
        # near the background colour, an opaque pixel changes little), and the faint edge
        # outside it is at most about one upscaled MNIST pixel wide.
        edge = 2 + max(x2 - x1, y2 - y1) / 18
        assert xs.min() <= x1 + 3 and ys.min() <= y1 + 3
        assert xs.max() + 1 >= x2 - 3 and ys.max() + 1 >= y2 - 3
        assert x1 - xs.min() <= edge and y1 - ys.min() <= edge
        assert xs.max() + 1 - x2 <= edge and ys.max() + 1 - y2 <= edge


def test_varied_training_scenes_are_seeded_and_tight():
    a, b = DigitSceneGenerator('train', seed=5), DigitSceneGenerator('train', seed=5)
    train_digits = set(digit_splits()['train'].tolist())
    sizes = set()
    for _ in range(20):
        sa, sb = a.varied_classification_scene(), b.varied_classification_scene()
        assert np.array_equal(sa.image, sb.image) and np.array_equal(sa.boxes, sb.boxes)
        side = sa.image.shape[0]
        assert sa.image.shape == (side, side, 3) and 64 <= side <= 176
        sizes.add(side)
        assert set(sa.digit_ids) <= train_digits and sa.photo in ('', *PHOTOS['train'])
        x1, y1, x2, y2 = sa.boxes[0]
        assert 0 <= x1 < x2 <= side and 0 <= y1 < y2 <= side
        assert BOX_THRESHOLD == 0.5
    assert len(sizes) > 5
