"""The experimental wider training generator (experiments/cls_generalisation/wide_scenes.py) and
``write_classification(..., generator=...)``, which writes its scenes."""
from __future__ import annotations

import hashlib
import os.path as osp
import sys

import numpy as np

from mmcam.datasets.digit_scenes import PHOTOS, digit_splits, write_classification

sys.path.insert(0, osp.join(osp.dirname(__file__), '..', '..', 'experiments', 'cls_generalisation'))
from wide_scenes import WideSceneGenerator  # noqa: E402


def test_wide_scenes_are_seeded_use_training_digits_and_hold_their_box():
    a, b = WideSceneGenerator('train', seed=2), WideSceneGenerator('train', seed=2)
    train_digits = set(digit_splits()['train'].tolist())
    for _ in range(30):
        sa, sb = a.varied_classification_scene(), b.varied_classification_scene()
        assert np.array_equal(sa.image, sb.image) and np.array_equal(sa.boxes, sb.boxes)
        side = sa.image.shape[0]
        assert sa.image.shape == (side, side, 3) and sa.image.dtype == np.uint8
        assert set(sa.digit_ids) <= train_digits and sa.photo in ('', *PHOTOS['train'])
        x1, y1, x2, y2 = sa.boxes[0]
        assert 0 <= x1 < x2 <= side and 0 <= y1 < y2 <= side


def test_every_texture_is_a_full_varied_image():
    gen = WideSceneGenerator('train', seed=0)
    for name in ('_noise', '_plaid', '_dots', '_tiles', '_curves', '_contours'):
        tex = np.asarray(getattr(gen, name)(70, 90), np.float32)
        assert tex.shape == (70, 90, 3), name
        assert tex.std() > 5, f'{name} drew a flat image'


def _digest(root):
    h = hashlib.sha256()
    with open(osp.join(root, 'train.txt')) as f:
        lines = f.read().split()
    h.update(' '.join(lines).encode())
    for rel in lines[::2]:
        with open(osp.join(root, rel), 'rb') as f:
            h.update(f.read())
    return h.hexdigest(), lines


def test_write_classification_draws_from_the_given_generator(tmp_path):
    wide = [write_classification(str(tmp_path / f'w{i}'), 'train', 6, 4, varied=1.0,
                                 generator=WideSceneGenerator('train', 4)) for i in range(2)]
    plain = write_classification(str(tmp_path / 'p'), 'train', 6, 4, varied=1.0)
    (d0, lines), (d1, _), (dp, _) = (_digest(osp.dirname(p)) for p in (*wide, plain))
    assert d0 == d1 and d0 != dp
    assert len(lines) == 12 and all(label in '0123456789' for label in lines[1::2])
