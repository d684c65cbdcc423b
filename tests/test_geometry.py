"""Property-based tests (hypothesis): the geometry code for random shapes and scales, and the
layer-name parser on every name --preview-model prints."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mmcam.geometry import InputGeometry

SIZES = st.integers(min_value=8, max_value=400)


@st.composite
def pipelines(draw):
    """A pipeline's metadata, and where it put original pixel (x, y): at
    ``(x * sx + tx, y * sy + ty)`` on the network input, pixel centres mapped to pixel centres
    (``x_in + 0.5 = (x + 0.5) * s``), shifted by the letterbox padding or the crop."""
    h, w = draw(SIZES), draw(SIZES)
    if draw(st.booleans()):  # keep-ratio resize into a square, letterboxed (mmyolo)
        side = draw(st.integers(min_value=16, max_value=320))
        s = side / max(h, w)
        nh, nw = max(1, round(h * s)), max(1, round(w * s))
        top, left = (side - nh) // 2, (side - nw) // 2
        meta = dict(ori_shape=(h, w), img_shape=(side, side), scale_factor=(nw / w, nh / h),
                    pad_param=np.array([top, side - nh - top, left, side - nw - left]))
        shift = (left, top)
    else:  # stretch, then crop a box out of it (mmpretrain)
        nh, nw = draw(st.integers(16, 320)), draw(st.integers(16, 320))
        ch, cw = draw(st.integers(8, nh)), draw(st.integers(8, nw))
        y1, x1 = draw(st.integers(0, nh - ch)), draw(st.integers(0, nw - cw))
        meta = dict(ori_shape=(h, w), img_shape=(ch, cw), scale_factor=(nw / w, nh / h),
                    crop_bbox=np.array([x1, y1, x1 + cw, y1 + ch]))
        shift = (-x1, -y1)
    sx, sy = meta['scale_factor']
    return meta, (sx, sy), (0.5 * (sx - 1) + shift[0], 0.5 * (sy - 1) + shift[1])


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(pipelines())
def test_a_linear_map_comes_back_as_the_pipeline_placed_it(pipeline):
    """A map that is x (and y) of the network input comes back on the original image as the
    pipeline's own affine placement of each pixel: input = original * scale + offset."""
    meta, (sx, sy), (tx, ty) = pipeline
    geom = InputGeometry.from_meta(meta)
    h_in, w_in = geom.input_hw
    ys, xs = np.mgrid[0:h_in, 0:w_in].astype(np.float32)
    seen = geom.seen_mask()
    h, w = geom.ori_hw
    oy, ox = np.mgrid[0:h, 0:w].astype(np.float64)
    expected_x, expected_y = ox * sx + tx, oy * sy + ty
    # Inside the input, away from its edge (bilinear sampling of a ramp is exact there).
    inner = (expected_x >= 0) & (expected_x <= w_in - 1) & (expected_y >= 0) & \
        (expected_y <= h_in - 1)
    assert inner.any() or not seen.any()
    np.testing.assert_allclose(geom.to_original(xs)[inner], expected_x[inner], atol=1e-3)
    np.testing.assert_allclose(geom.to_original(ys)[inner], expected_y[inner], atol=1e-3)
    # What is seen is what lands inside the input (to half a pixel, nearest sampling; OpenCV
    # computes coordinates in fixed point, so a pixel within 1/32 px of that edge may go
    # either way).
    assert seen[inner].all()
    edge = 0.5 + 1 / 32
    outside = (expected_x < -edge) | (expected_x > w_in - 1 + edge) | \
        (expected_y < -edge) | (expected_y > h_in - 1 + edge)
    assert not seen[outside].any()


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(pipelines(), st.floats(0.05, 0.95), st.floats(0.05, 0.95))
def test_points_land_where_the_pipeline_put_them(pipeline, fx, fy):
    meta, (sx, sy), (tx, ty) = pipeline
    geom = InputGeometry.from_meta(meta)
    h, w = geom.ori_hw
    xy = np.array([[fx * (w - 1), fy * (h - 1)]])
    np.testing.assert_allclose(geom.to_input_points(xy), [[xy[0, 0] * sx + tx,
                                                           xy[0, 1] * sy + ty]], atol=1e-9)


@pytest.mark.parametrize('package, rel', [
    ('mmpretrain', 'resnet/resnet18_8xb32_in1k.py'),
    ('mmpretrain', 'deit/deit-tiny_4xb256_in1k.py'),
    ('mmyolo', 'yolov5/yolov5_s-v61_syncbn_fast_8xb16-300e_coco.py'),
])
def test_every_previewed_name_resolves_to_its_module(package, rel):
    """Each name --preview-model prints, and its bracket spelling for numeric parts
    (``layer4.1`` -> ``layer4[1]``), finds that very module."""
    import os

    from mmengine.config import Config

    from mmcam.apis import LoadedModel
    from mmcam.cams.layers import preview_rows
    from mmcam.utils.modules import find_module
    module = __import__(package)
    cfg = Config.fromfile(os.path.join(os.path.dirname(module.__file__), '.mim', 'configs', rel))
    model = LoadedModel(cfg).model
    modules = dict(model.named_modules())
    names = [name for name, _, _ in preview_rows(model)]
    assert names and set(names) == set(modules) - {''}

    @settings(max_examples=80, deadline=None, derandomize=True, database=None)
    @given(st.sampled_from(names))
    def check(name):
        assert find_module(model, name) is modules[name]
        parts = name.split('.')
        bracketed = parts[0] + ''.join(f'[{p}]' if p.isdigit() else f'.{p}' for p in parts[1:])
        assert find_module(model, bracketed) is modules[name]
    check()
