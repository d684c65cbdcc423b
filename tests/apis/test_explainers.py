"""One explainer interface (mmcam.apis): build from a config + checkpoint or a model,
``explain(image or sample) -> result``, ``draw(result) -> picture``, for all three."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mmcam import apis

REPO = Path(__file__).resolve().parents[2]
CLS = (str(REPO / 'configs' / 'demo' / 'cls_resnet.py'),
       str(REPO / 'demo' / 'checkpoints' / 'cls_resnet.pth'))
DET = (str(REPO / 'configs' / 'demo' / 'det_yolov5.py'),
       str(REPO / 'demo' / 'checkpoints' / 'det_yolov5.pth'))
#: explainer, model, options, its result type
EXPLAINERS = {
    'cam': (apis.CAMInferencer, CLS, {}, apis.CAMResult),
    'featmap': (apis.FeatMapInferencer, DET, {'target_layers': ['neck'],
                                               'channel_reduction': 'squeeze_mean'},
                apis.FeatMapResult),
    'boxam': (apis.BoxAMInferencer, DET, {}, apis.BoxAMResult),
}


@pytest.mark.parametrize('name', EXPLAINERS)
def test_config_model_image_and_sample_give_the_same_result(name):
    cls, (config, checkpoint), options, result_type = EXPLAINERS[name]
    image = str(REPO / 'demo' / ('two_digits.png' if name == 'cam' else 'digits_det.png'))
    from_config = cls(config, checkpoint=checkpoint, **options)
    loaded = from_config.loaded
    from_loaded = cls(loaded, **options)
    from_module = cls(loaded.model, **options, scope=loaded.scope) if name != 'cam' else \
        cls(loaded.model, **options)
    results = [from_config.explain(image),
               from_loaded.explain(loaded.prepare([image])[0]),
               from_module.explain(loaded.prepare([image])[0])]
    assert all(isinstance(r, result_type) for r in results)
    pictures = [e.draw(r) for e, r in zip((from_config, from_loaded, from_module), results)]
    h, w = results[0].image.shape[:2]
    for picture in pictures:
        assert picture.dtype == np.uint8 and picture.ndim == 3 and picture.shape[0] >= h
        np.testing.assert_array_equal(picture, pictures[0])


def test_everything_is_exported_from_mmcam_apis():
    for name in ('CAMInferencer', 'FeatMapInferencer', 'BoxAMInferencer', 'CAMResult',
                 'FeatMapResult', 'BoxAMResult', 'LoadedModel', 'Sample'):
        assert name in apis.__all__ and hasattr(apis, name)


def test_a_built_model_needs_its_scope():
    loaded = apis.LoadedModel(*DET)
    with pytest.raises(apis.InputError, match='default scope'):
        apis.BoxAMInferencer(loaded.model)


@pytest.mark.parametrize('name', EXPLAINERS)
def test_a_model_in_train_mode_is_explained_in_eval_mode_and_given_back(name):
    """The same result as for the model in eval mode; afterwards every module is in the mode
    it was in (one frozen in eval mode stays so), and no BatchNorm statistic moved."""
    import torch
    cls, (config, checkpoint), options, _ = EXPLAINERS[name]
    image = str(REPO / 'demo' / ('digit.png' if name == 'cam' else 'digits_det.png'))
    loaded = apis.LoadedModel(config, checkpoint)
    sample = loaded.prepare([image])[0]
    scope = {} if name == 'cam' else {'scope': loaded.scope}
    explainer = cls(loaded.model, **options, **scope)
    expected = explainer.explain(sample)
    model = loaded.model.train()
    frozen = next(m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))
    frozen.eval()
    stats = {k: v.clone() for k, v in model.state_dict().items() if 'running' in k}
    result = explainer.explain(sample)
    assert model.training and not frozen.training
    assert all(m.training for m in model.modules() if m is not frozen)
    for key, value in stats.items():
        torch.testing.assert_close(model.state_dict()[key], value, rtol=0, atol=0, msg=key)
    maps = {'cam': lambda r: r.maps[0].cam, 'boxam': lambda r: r.box_maps,
            'featmap': lambda r: r.levels[0][1].numpy()}[name]
    np.testing.assert_allclose(maps(result), maps(expected), atol=1e-5)


@pytest.mark.parametrize('name', ['cam', 'boxam'])
def test_non_finite_activations_give_a_flat_map_and_a_warning(name, monkeypatch):
    """A target layer whose output turns NaN (a broken checkpoint, an overflow) gives a flat
    map and one warning, never a NaN map or picture. (For box AM from the explaining pass on:
    the detections themselves come first, from the healthy pass; so here the scores do not
    share the detection's pass.)"""
    from contextlib import nullcontext
    cls, (config, checkpoint), options, _ = EXPLAINERS[name]
    explainer = cls(config, checkpoint=checkpoint, **options)
    if name == 'boxam':
        monkeypatch.setattr(type(explainer.adapter), 'features_once',
                            lambda self, inputs: nullcontext())
    layer = explainer.target_layers[0] if name == 'cam' else explainer.layers[0]
    image = str(REPO / 'demo' / ('digit.png' if name == 'cam' else 'digits_det.png'))
    passes = []

    def poison(module, args, out):
        passes.append(1)
        return out * float('nan') if name == 'cam' or len(passes) > 1 else out
    handle = layer.register_forward_hook(poison)
    try:
        with pytest.warns(UserWarning, match='NaN or infinite values'):
            result = explainer.explain(image)
    finally:
        handle.remove()
    maps = np.stack([m.cam for m in result.maps]) if name == 'cam' else result.box_maps
    assert maps.size and np.isfinite(maps).all() and maps.max() == 0
    picture = explainer.draw(result)
    assert picture.dtype == np.uint8


def test_a_batch_out_of_memory_is_retried_one_by_one_and_then_skipped():
    """Fault injection on the demo classifier's backbone: a batch of 3 that runs out of memory
    is explained one image at a time (the same maps as batches of one); an image that runs
    out alone is skipped with the reason, and the run goes on."""
    import torch
    cams = apis.CAMInferencer(*CLS)
    images = [str(REPO / 'demo' / name) for name in ('digit.png', 'two_digits.png', 'digit.png')]
    expected = [r.maps[0].cam for r in cams.run(images, batch_size=1)]
    limit = {'batch': 1}

    def out_of_memory(module, args):
        if args[0].shape[0] > limit['batch']:
            raise torch.OutOfMemoryError('CUDA out of memory (injected by the test)')
    handle = cams.classifier.backbone.register_forward_pre_hook(out_of_memory)
    try:
        with pytest.warns(UserWarning, match='ran out of memory.*one image at a time'):
            results = list(cams.run(images, batch_size=3))
        assert [type(r).__name__ for r in results] == ['CAMResult'] * 3
        for result, cam in zip(results, expected):
            np.testing.assert_allclose(result.maps[0].cam, cam, atol=1e-5)
        limit['batch'] = 0  # now even one image is too much
        with pytest.warns(UserWarning):
            results = list(cams.run(images[:2], batch_size=2))
        assert [type(r).__name__ for r in results] == ['SkippedImage'] * 2
        assert all('out of memory' in r.reason and '--device cpu' in r.reason
                   for r in results)
    finally:
        handle.remove()
