"""The pinned OpenMMLab stack imports together and runs real models on this machine."""
import importlib

import numpy as np
import pytest
import torch

import mmcam
from mmcam.apis import LoadedModel


def test_packages_import_together_and_pass_their_version_checks():
    # mmdet and mmyolo assert the mmcv/mmengine ranges they accept at import time.
    for name in ('mmcv', 'mmengine', 'mmdet', 'mmyolo', 'mmpretrain', 'pytorch_grad_cam'):
        importlib.import_module(name)
    import mmcv
    assert mmcv.__version__ == '2.0.1'
    assert isinstance(mmcam.__version__, str) and mmcam.__version__.count('.') == 2


def test_mmcv_compiled_nms_matches_torchvision():
    from mmcv.ops import nms
    from torchvision.ops import nms as tv_nms
    gen = torch.Generator().manual_seed(0)
    xy = torch.rand(200, 2, generator=gen) * 100
    wh = torch.rand(200, 2, generator=gen) * 30 + 5
    boxes = torch.cat([xy, xy + wh], dim=1)
    scores = torch.rand(200, generator=gen)
    dets, keep = nms(boxes, scores, iou_threshold=0.5)
    expected = tv_nms(boxes, scores, 0.5)
    assert torch.equal(keep.sort().values, expected.sort().values)
    assert dets.shape == (len(expected), 5)


def test_every_mmcv_op_the_stack_imports_is_built():
    """mmcv.ops loads each op's symbols from the compiled _ext when imported (and asserts
    they exist), and the model packages import the ops they use."""
    import mmcv.ops
    from mmcv.utils import ext_loader
    ext = ext_loader.load_ext('_ext', ['nms', 'roi_align_forward', 'ms_deform_attn_forward'])
    assert ext is not None
    for package in ('mmdet.models', 'mmyolo.models', 'mmpretrain.models'):
        importlib.import_module(package)
    assert len([n for n in dir(mmcv.ops) if not n.startswith('_')]) > 100


def test_mmcv_compiled_roi_align_matches_torchvision():
    from mmcv.ops import roi_align
    from torchvision.ops import roi_align as tv_roi_align
    gen = torch.Generator().manual_seed(0)
    features = torch.rand(2, 8, 32, 40, generator=gen)
    xy = torch.rand(10, 2, generator=gen) * 25
    rois = torch.cat([torch.randint(0, 2, (10, 1), generator=gen).float(), xy,
                      xy + torch.rand(10, 2, generator=gen) * 12 + 2], dim=1)
    ours = roi_align(features, rois, (7, 7), 0.5, 2, 'avg', True)
    expected = tv_roi_align(features, rois, (7, 7), 0.5, 2, aligned=True)
    torch.testing.assert_close(ours, expected, rtol=1e-4, atol=1e-5)


def test_mmcv_deformable_attention_of_dino_runs_on_the_cpu():
    from mmcv.ops import MultiScaleDeformableAttention
    torch.manual_seed(0)
    attn = MultiScaleDeformableAttention(embed_dims=32, num_heads=4, num_levels=2,
                                         num_points=2, batch_first=True)
    shapes = torch.tensor([[8, 8], [4, 4]])
    starts = torch.cat([shapes.new_zeros(1), (shapes[:, 0] * shapes[:, 1]).cumsum(0)[:-1]])
    value = torch.rand(1, int((shapes[:, 0] * shapes[:, 1]).sum()), 32)
    query = torch.rand(1, 5, 32, requires_grad=True)
    out = attn(query, value=value, reference_points=torch.rand(1, 5, 2, 2),
               spatial_shapes=shapes, level_start_index=starts)
    assert out.shape == (1, 5, 32) and torch.isfinite(out).all()
    out.sum().backward()
    assert torch.isfinite(query.grad).all()


@pytest.mark.parametrize('config', [
    'resnet/resnet50_8xb32_in1k.py',
    'vision_transformer/vit-base-p16_64xb64_in1k.py',
])
def test_mmpretrain_classifier_from_shipped_config_runs(mmpretrain_configs, config):
    loaded = LoadedModel(str(mmpretrain_configs / config))
    image = np.random.default_rng(0).integers(0, 255, (200, 300, 3), dtype=np.uint8)
    sample, = loaded.prepare([image])
    assert sample.inputs.shape == (1, 3, 224, 224)
    with torch.no_grad():
        logits = loaded.model(sample.inputs, mode='tensor')
    assert logits.shape == (1, 1000) and torch.isfinite(logits).all()


@pytest.mark.parametrize('config', [
    'yolov5/yolov5_s-v61_syncbn_fast_8xb16-300e_coco.py',
    'yolov6/yolov6_s_syncbn_fast_8xb32-400e_coco.py',
    'yolox/yolox_s_fast_8xb8-300e_coco.py',
    'rtmdet/rtmdet_s_syncbn_fast_8xb32-300e_coco.py',
])
def test_mmyolo_detector_from_shipped_config_runs(mmyolo_configs, config):
    loaded = LoadedModel(str(mmyolo_configs / config))
    assert loaded.task == 'detection'
    image = np.random.default_rng(0).integers(0, 255, (240, 320, 3), dtype=np.uint8)
    sample, = loaded.prepare([image])
    assert sample.inputs.shape[-2:] == (640, 640)  # letterboxed to the model's input
    with torch.no_grad():
        result, = loaded.model.predict(sample.inputs, [sample.data_sample])
    assert result.pred_instances.bboxes.shape[-1] == 4
    assert tuple(result.ori_shape) == (240, 320)
