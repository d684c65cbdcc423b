"""The second and third digit-scene generators (mmcam.datasets.other_scenes, third_scenes) and the
varied training scenes."""
from __future__ import annotations

import numpy as np
import pytest

from mmcam.datasets.digit_scenes import (BOX_THRESHOLD, PHOTOS, DigitSceneGenerator,
                                         digit_splits)
from mmcam.datasets.other_scenes import OTHER_PICTURES, TEXTURES, OtherSceneGenerator
from mmcam.datasets.third_scenes import KINDS, THIRD_PICTURES, ThirdSceneGenerator

FLAT = (90, 140, 100)


def scenes_on_flat(gen, count):
    """``count`` scenes of ``gen`` on a flat grey-green background (the background's random
    draws are still made, so the scenes stay varied), with that background."""
    drawn = gen.background
    flat = np.full((gen.size, gen.size, 3), FLAT, np.float32)

    def flat_background():
        drawn()
        return flat.copy(), 'flat'

    gen.background = flat_background
    return [gen.scene() for _ in range(count)], flat


@pytest.mark.parametrize('generator', [OtherSceneGenerator, ThirdSceneGenerator])
def test_second_and_third_generators_are_deterministic_for_a_seed(generator):
    a, b = generator(seed=3), generator(seed=3)
    for _ in range(4):
        sa, sb = a.scene(), b.scene()
        assert np.array_equal(sa.image, sb.image) and np.array_equal(sa.boxes, sb.boxes)
        assert np.array_equal(sa.labels, sb.labels) and sa.photo == sb.photo
    assert not np.array_equal(generator(seed=4).scene().image, generator(seed=3).scene().image)


TRAINING_PHOTOS = {p for ps in PHOTOS.values() for p in ps}


@pytest.mark.parametrize('generator,size,own,elsewhere', [
    (OtherSceneGenerator, 224, TEXTURES + OTHER_PICTURES, TRAINING_PHOTOS),
    (ThirdSceneGenerator, 256, KINDS + THIRD_PICTURES,
     TRAINING_PHOTOS | set(OTHER_PICTURES) | set(TEXTURES)),
])
def test_second_and_third_generators_use_test_digits_and_their_own_backgrounds_only(
        generator, size, own, elsewhere):
    test_digits = set(digit_splits()['test'].tolist())
    gen = generator(seed=0)
    seen = set()
    for _ in range(40):
        sc = gen.scene()
        assert sc.image.shape == (size, size, 3) and sc.image.dtype == np.uint8
        assert len(sc.labels) == 1 and set(sc.digit_ids) <= test_digits
        assert sc.photo in own and sc.photo not in elsewhere
        seen.add(sc.photo)
    assert len(seen) >= 6  # procedural backgrounds and pictures are both drawn


def test_second_generator_boxes_are_tight_around_the_digit():
    """Box = the pixels the digit (fill and outline) covers: on a flat grey-green background
    the pixels the digit changes span the box, give or take its soft edge."""
    scenes, flat = scenes_on_flat(OtherSceneGenerator(seed=1), 12)
    for sc in scenes:
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


def test_third_generator_boxes_hold_the_digit():
    """On a flat background the pixels the digit changes strongly lie in its box (give or take
    a shadow or a defocused edge), and the box holds many of them."""
    scenes, flat = scenes_on_flat(ThirdSceneGenerator(seed=1), 12)
    for sc in scenes:
        x1, y1, x2, y2 = sc.boxes[0]
        assert 0 <= x1 < x2 <= 256 and 0 <= y1 < y2 <= 256
        assert max(x2 - x1, y2 - y1) <= 0.6 * 256 + 4
        changed = np.abs(sc.image.astype(int) - flat.astype(int)).max(-1) > 60
        ys, xs = np.nonzero(changed)
        inside = (xs >= x1 - 8) & (xs < x2 + 8) & (ys >= y1 - 8) & (ys < y2 + 8)
        assert inside.mean() >= 0.95
        assert inside.sum() >= 20
