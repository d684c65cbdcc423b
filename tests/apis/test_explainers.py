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
