"""mmcam's first-principal-component projection (EigenCAM, EigenGradCAM, --eigen-smooth).

It solves a small eigenproblem instead of grad-cam's full SVD (the speed is measured by
benchmarks/run.py, goal 4), so its projection must equal grad-cam's up to sign, and its sign
must follow mmcam's rule: the component's entries sum to >= 0 (the map is high where the
activations are above their mean).
"""
from pathlib import Path

import numpy as np
import pytest
import torch
from pytorch_grad_cam.utils.svd_on_activations import get_2d_projection

from _signed_projection import component_sum
from mmcam.apis import CAMInferencer
from mmcam.cams.eigen import first_component_projection

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope='module')
def demo_activations() -> np.ndarray:
    """layer3 and layer4 activations of the trained demo ResNet on a held-out demo image."""
    inferencer = CAMInferencer(str(REPO / 'configs' / 'demo' / 'cls_resnet.py'),
                               str(REPO / 'demo' / 'checkpoints' / 'cls_resnet.pth'))
    x = inferencer.loaded.prepare([str(REPO / 'demo' / 'two_digits.png')])[0].inputs
    with torch.no_grad():
        feats = inferencer.classifier.backbone.forward(x)
    return [f.numpy() for f in feats]


def _assert_equal_up_to_sign(ours: np.ndarray, theirs: np.ndarray) -> None:
    for a, b in zip(ours, theirs):
        sign = 1.0 if float((a * b).sum()) >= 0 else -1.0
        np.testing.assert_allclose(a, sign * b, rtol=1e-3, atol=1e-4 * np.abs(b).max())


@pytest.mark.parametrize('shape', [(2, 16, 12, 9), (1, 64, 4, 4), (1, 1, 5, 5)],
                         ids=['more pixels', 'more channels', 'one channel'])
def test_projection_equals_grad_cam_up_to_sign(shape):
    rng = np.random.default_rng(1)
    acts = np.maximum(rng.normal(size=shape), 0).astype(np.float32)
    acts[0, 0, 0, 0] = np.nan  # grad-cam reads NaN as 0
    ours = first_component_projection(acts)
    _assert_equal_up_to_sign(ours, get_2d_projection(acts.copy()))
    for a, p in zip(acts, ours):
        assert component_sum(a, p) >= 0


def test_projection_of_a_trained_model_equals_grad_cam_up_to_sign(demo_activations):
    for acts in demo_activations:
        ours = first_component_projection(acts)
        assert ours.std() > 0
        _assert_equal_up_to_sign(ours, get_2d_projection(acts.copy()))


def test_sign_points_at_the_active_region():
    """Channels that fire together on a blob: grad-cam's SVD may return the component either
    way round (then its map, after the ReLU, is everything but the blob); mmcam's map peaks on
    the blob."""
    rng = np.random.default_rng(0)
    acts = rng.uniform(0, 0.1, size=(1, 8, 10, 10)).astype(np.float32)
    acts[0, :, 6:9, 1:4] += rng.uniform(1, 2, size=(8, 1, 1)).astype(np.float32)
    proj = first_component_projection(acts)[0]
    assert np.unravel_index(proj.argmax(), proj.shape)[0] in (6, 7, 8)
    assert proj[6:9, 1:4].min() > 0 > proj[:5].max()
