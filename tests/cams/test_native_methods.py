"""mmcam's native GradCAM-family, AblationCAM and ScoreCAM give grad-cam's maps.

The trained demo models (a ResNet-18 and a ViT, 96 px) through CAMInferencer: each native
method is compared with grad-cam's class of the same name, swapped into the method table.
Speed is measured by benchmarks/run.py, not here; these tests check that the shortcuts are
taken (fewer calls of the layers before the target, no gradient below it) and change no map.
"""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import pytorch_grad_cam
import torch
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

from _signed_projection import grad_cam_signed_like_mmcam
from mmcam.apis import CAMInferencer
from mmcam.cams import ablation, gradient, score
from mmcam.cams.methods import get_method, register_method

REPO = Path(__file__).resolve().parents[2]
IMAGE = str(REPO / 'demo' / 'two_digits.png')


def _inferencer(name: str, layers=None) -> CAMInferencer:
    return CAMInferencer(str(REPO / 'configs' / 'demo' / f'{name}.py'),
                         str(REPO / 'demo' / 'checkpoints' / f'{name}.pth'), target_layers=layers)


@pytest.fixture(scope='module')
def resnet():
    return _inferencer('cls_resnet')


@contextmanager
def grad_cam_class(name: str):
    """grad-cam's own class under ``name`` in the method table while open."""
    native = get_method(name)
    register_method(name, getattr(pytorch_grad_cam, native.__name__))
    try:
        yield
    finally:
        register_method(name, native)


def _maps(inferencer: CAMInferencer, method: str, **kwargs) -> np.ndarray:
    result = inferencer.explain(IMAGE, methods=[method], target_category=[3, 7], **kwargs)
    return np.stack([m.cam_input for m in result.maps])


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


def _hooks(model: torch.nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
               for m in model.modules())


@pytest.mark.parametrize('model', ['cls_resnet', 'cls_vit'])
@pytest.mark.parametrize('method', ['GradCAM', 'GradCAM++', 'LayerCAM', 'XGradCAM'])
def test_gradient_methods_equal_grad_cam(model, method):
    inferencer = _inferencer(model)
    assert get_method(method).__module__ == 'mmcam.cams.gradient'
    native = _maps(inferencer, method)
    with grad_cam_class(method):
        reference = _maps(inferencer, method)
    assert native.std() > 0
    np.testing.assert_allclose(native, reference, atol=1e-5)
    assert _hooks(inferencer.classifier) == 0


@pytest.mark.parametrize('method', ['GradCAM', 'LayerCAM'])
def test_eigen_smooth_equals_grad_cam_with_mmcam_sign(resnet, method):
    native = _maps(resnet, method, eigen_smooth=True)
    with grad_cam_class(method), grad_cam_signed_like_mmcam():
        reference = _maps(resnet, method, eigen_smooth=True)
    assert native.std() > 0
    np.testing.assert_allclose(native, reference, atol=1e-4)


def test_gradient_backward_stops_at_the_target_layer(resnet):
    """The input and the layers before the target get no gradient; the map is unchanged."""
    x = resnet.loaded.prepare([IMAGE])[0].inputs.requires_grad_(True)
    seen = []
    handle = resnet.classifier.backbone.layer1.register_full_backward_hook(
        lambda m, gin, gout: seen.append(1))
    try:
        for p in resnet.model.parameters():
            p.requires_grad_(False)
        with gradient.GradCAM(resnet.model, resnet.target_layers) as cam:
            native = cam(x, [ClassifierOutputTarget(3)])
        assert x.grad is None and not seen
        with pytorch_grad_cam.GradCAM(resnet.model, resnet.target_layers) as cam:
            reference = cam(x, [ClassifierOutputTarget(3)])
        assert x.grad is not None and seen  # grad-cam went down to the input
    finally:
        handle.remove()
        for p in resnet.model.parameters():
            p.requires_grad_(True)
    np.testing.assert_allclose(native, reference, atol=1e-5)


def _calls(module: torch.nn.Module, run) -> int:
    count = [0]
    handle = module.register_forward_hook(lambda *args: count.__setitem__(0, count[0] + 1))
    try:
        run()
    finally:
        handle.remove()
    return count[0]


def test_ablation_replays_only_the_layers_after_the_target():
    """At the last stage (a ReLU output, where grad-cam's ablation value is 0 too) the maps
    are grad-cam's, and the stages before it run a few times instead of once per group."""
    inferencer = _inferencer('cls_resnet', ['backbone.layer4'])
    # A skipped module's forward hooks still fire; its children are not called at all.
    stem = inferencer.classifier.backbone.layer1[0].conv1
    maps = {}
    native_calls = _calls(stem, lambda: maps.setdefault('native', _maps(inferencer,
                                                                         'AblationCAM')))
    with grad_cam_class('AblationCAM'):
        full_calls = _calls(stem, lambda: maps.setdefault('grad-cam', _maps(inferencer,
                                                                             'AblationCAM')))
    assert maps['native'].std() > 0
    assert _correlation(maps['native'], maps['grad-cam']) > 0.9999
    np.testing.assert_allclose(maps['native'], maps['grad-cam'], atol=1e-4)
    # 128 channels in groups of 32, two rows: grad-cam runs layer1 for every group; mmcam
    # for the probe, grad-cam's first forward pass and one recording pass per row.
    assert full_calls >= 10 and native_calls <= 4, (native_calls, full_calls)
    assert _hooks(inferencer.classifier) == 0


def test_ablation_zero_value_equals_grad_cam_with_the_zero_layer(resnet):
    """Off a ReLU output the native class ablates to 0 (the paper's definition, as box AM
    does): grad-cam's AblationCAM given the same ablation layer makes the same map."""
    layer = [resnet.classifier.backbone.layer4[1].conv2]
    x = resnet.loaded.prepare([IMAGE])[0].inputs
    targets = [ClassifierOutputTarget(3)]
    with ablation.AblationCAM(resnet.model, layer) as cam:
        native = cam(x, targets)
    with pytorch_grad_cam.AblationCAM(resnet.model, layer,
                                      ablation_layer=ablation.ZeroAblationLayer()) as cam:
        reference = cam(x, targets)
    assert native.std() > 0
    assert _correlation(native, reference) > 0.9999


def test_ablation_on_vit_tokens_equals_grad_cam():
    inferencer = _inferencer('cls_vit')
    native = _maps(inferencer, 'AblationCAM')
    with grad_cam_class('AblationCAM'):
        reference = _maps(inferencer, 'AblationCAM')
    assert native.std() > 0
    assert _correlation(native, reference) > 0.999


def test_score_cam_equals_grad_cam_and_restores_the_weights(resnet):
    before = {n: (p.stride(), p.data_ptr()) for n, p in resnet.model.named_parameters()}
    native = _maps(resnet, 'ScoreCAM')
    with grad_cam_class('ScoreCAM'):
        reference = _maps(resnet, 'ScoreCAM')
    assert native.std() > 0
    assert _correlation(native, reference) > 0.9999
    assert {n: (p.stride(), p.data_ptr()) for n, p in resnet.model.named_parameters()} == before


def test_norms_folded_keeps_the_outputs_and_puts_everything_back(resnet):
    x = torch.rand(4, 3, 96, 96)
    model = resnet.model
    state = {k: (v.clone(), v.data_ptr()) for k, v in model.state_dict().items()}
    with torch.no_grad():
        expected = model(x)
        with score.norms_folded(model, x[:1]) as count:
            folded = model(x)
            assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules()) == count
    torch.testing.assert_close(folded, expected, rtol=1e-4, atol=1e-4)
    assert model.state_dict().keys() == state.keys()
    for k, v in model.state_dict().items():
        assert v.data_ptr() == state[k][1] and torch.equal(v, state[k][0]), k
    assert not any('forward' in vars(m) for m in model.modules())
    with torch.no_grad():
        torch.testing.assert_close(model(x), expected, rtol=0, atol=0)


class _ConvReadTwice(torch.nn.Module):
    """A convolution whose output is read by its norm and added after it: not foldable."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3)
        self.norm = torch.nn.BatchNorm2d(4).eval()
        self.norm.running_mean.fill_(0.5)
        self.norm.running_var.fill_(4.0)

    def forward(self, x):
        y = self.conv(x)
        return (self.norm(y) + y).mean((2, 3))


def test_norms_folded_skips_a_convolution_whose_output_is_read_elsewhere():
    model, x = _ConvReadTwice(), torch.rand(2, 3, 8, 8)
    with torch.no_grad():
        expected = model(x)
        with score.norms_folded(model, x[:1]) as count:
            assert count == 0
            torch.testing.assert_close(model(x), expected)


def test_distinct_masks_groups_channels_with_the_same_scaled_map():
    rng = np.random.default_rng(0)
    acts = (rng.integers(0, 16, (6, 4, 4)) / 16).astype(np.float32)  # exact in float32
    acts[:, 0, 0], acts[:, 0, 1] = 0, 15 / 16
    acts[1] = acts[0] * 4 + 2          # the same map once scaled to [0, 1]
    acts[3] = 0                        # dead channels: all-zero masks
    acts[4] = 5
    first, inverse = score.distinct_masks(acts)
    assert len(first) == 4
    assert inverse[0] == inverse[1] and inverse[3] == inverse[4]
    assert len({inverse[0], inverse[2], inverse[3], inverse[5]}) == 4


@pytest.mark.parametrize('categories', [None, [3, 7]])
def test_one_forward_pass_per_batch_for_gradient_methods(resnet, categories):
    """A gradient method's own forward pass gives the scores: the backbone runs once for the
    batch whether the categories are given or are the predicted classes (no probe pass), and
    the scores equal a plain forward pass's."""
    calls = []
    handle = resnet.classifier.backbone.register_forward_hook(lambda *a: calls.append(1))
    try:
        result = resnet.explain(IMAGE, methods=['GradCAM'], target_category=categories)
    finally:
        handle.remove()
    assert len(calls) == 1
    x = resnet.loaded.prepare([IMAGE])[0].inputs
    with torch.no_grad():
        expected = resnet.model.scores(resnet.model(x))[0].numpy()
    np.testing.assert_allclose(result.scores, expected, rtol=1e-5, atol=1e-6)
    assert [m.category for m in result.maps] == (categories or [int(expected.argmax())])
