"""Box-level activation maps on real mmyolo detectors built from the configs in the wheel.

The four families are built from mmyolo's own -s configs, narrowed (widen 0.125) and with a
128 px input so the whole file runs in a few minutes on 2 CPU cores. Their weights are random,
so to get boxes at all the class/objectness biases of the prediction convs are raised, then the
model goes through a real checkpoint file (mmengine's save_checkpoint, mmcam's safe loader).
Quality claims (maps inside the boxes) are checked on the trained demo detectors, when present.
"""
from __future__ import annotations

import functools
import os
import tempfile
from pathlib import Path

import mmcv
import numpy as np
import pytest
import torch
from mmengine.config import Config

from mmcam.apis.boxam import ALL_LEVELS, BoxAMInferencer, combine_maps, normalise_in_boxes
from mmcam.apis.model_loader import InputError, LoadedModel
from mmcam.cams.box_methods import box_method_names, gradient_box_methods
from mmcam.cli import boxam as demo  # the code of demo/boxam_vis_demo.py
from mmcam.models.detectors import build_adapter

REPO = Path(__file__).resolve().parents[2]
FAMILIES = {
    'yolov5': 'yolov5/yolov5_s-v61_syncbn_fast_8xb16-300e_coco.py',
    'yolov6': 'yolov6/yolov6_s_syncbn_fast_8xb32-400e_coco.py',
    'yolox': 'yolox/yolox_s_fast_8xb8-300e_coco.py',
    'rtmdet': 'rtmdet/rtmdet_s_syncbn_fast_8xb32-300e_coco.py',
}
#: The prediction convs that output class logits, per family (head_module attribute).
CLS_CONVS = {'yolov5': 'convs_pred', 'yolov6': 'cls_preds', 'yolox': 'multi_level_conv_cls',
             'rtmdet': 'rtm_cls'}
CLASSES = ('cat', 'dog', 'bird')
SIZE = 128
METHODS = tuple(box_method_names())




def small_config(path: Path) -> Config:
    """mmyolo's config, narrowed, 3 classes, 128 px input (same pipeline steps)."""
    cfg = Config.fromfile(str(path))
    cfg.model.backbone.widen_factor = 0.125
    cfg.model.neck.widen_factor = 0.125
    cfg.model.bbox_head.head_module.widen_factor = 0.125
    cfg.model.bbox_head.head_module.num_classes = len(CLASSES)
    for step in cfg.test_dataloader.dataset.pipeline:
        if 'scale' in step:
            step['scale'] = (SIZE, SIZE)
    return cfg


def calibrate_bn(loaded: LoadedModel) -> None:
    """Set every BatchNorm's statistics from real photographs (random convs otherwise make
    activations vanish layer after layer, and every box would score the same)."""
    from skimage import data
    photos = [mmcv.rgb2bgr(getattr(data, n)()) for n in ('astronaut', 'coffee', 'rocket')]
    model = loaded.model
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None  # cumulative average over the calibration batches
    model.train()
    with torch.no_grad():
        for _ in range(2):
            model.extract_feat(torch.cat([s.inputs for s in loaded.prepare(photos)]))
    model.eval()


def raise_biases(model: torch.nn.Module, family: str) -> None:
    """Make a random-weight head report boxes: class 0 (and objectness) likely, sane sizes."""
    hm = model.bbox_head.head_module
    with torch.no_grad():
        # Prediction convs start near zero (std 0.01): widen them so outputs follow the image.
        for name, conv in hm.named_modules():
            if isinstance(conv, torch.nn.Conv2d) and any(
                    key in name for key in ('pred', 'rtm_', 'multi_level_conv')):
                torch.nn.init.normal_(conv.weight, std=conv.in_channels ** -0.5)
        for conv in getattr(hm, CLS_CONVS[family]):
            if family == 'yolov5':
                bias = conv.bias.view(hm.num_base_priors, -1)
                bias[:, 4] = 2.0      # objectness
                bias[:, 5:] = -4.0
                bias[:, 5] = 2.0      # class 0
            else:
                conv.bias.fill_(-4.0)
                conv.bias[0] = 2.5
        if family == 'yolox':
            for conv in hm.multi_level_conv_obj:
                conv.bias.fill_(2.5)
        for name in ('reg_preds', 'rtm_reg'):  # distance heads: positive distances
            for conv in getattr(hm, name, []):
                conv.bias.fill_(1.0)


@pytest.fixture(scope='session')
def test_image(tmp_path_factory) -> str:
    """A real, non-square photograph (so the letterbox pads), 180 x 260."""
    from skimage import data
    img = mmcv.imresize(data.chelsea(), (260, 180))
    path = tmp_path_factory.mktemp('img') / 'chelsea.png'
    mmcv.imwrite(mmcv.rgb2bgr(img), str(path))
    return str(path)


@pytest.fixture(scope='session')
def detectors(mmyolo_configs, tmp_path_factory) -> dict:
    """family -> (config path, checkpoint path, LoadedModel from the checkpoint)."""
    from mmengine.runner.checkpoint import save_checkpoint, weights_to_cpu
    root = tmp_path_factory.mktemp('detectors')
    out = {}
    for family, rel in FAMILIES.items():
        cfg = small_config(mmyolo_configs / rel)
        cfg_path = root / f'{family}.py'
        cfg.dump(str(cfg_path))
        torch.manual_seed(0)
        fresh = LoadedModel(str(cfg_path))
        model = fresh.model
        calibrate_bn(fresh)
        raise_biases(model, family)
        ckpt = root / f'{family}.pth'
        save_checkpoint({'state_dict': weights_to_cpu(model.state_dict()),
                         'meta': {'dataset_meta': {'classes': CLASSES}}}, str(ckpt))
        out[family] = (str(cfg_path), str(ckpt), LoadedModel(str(cfg_path), str(ckpt)))
    return out


# -- the adapter ----------------------------------------------------------------------------
@pytest.mark.parametrize('family', FAMILIES)
def test_adapter_scores_are_the_detector_scores(detectors, test_image, family):
    _, _, loaded = detectors[family]
    adapter = build_adapter(loaded.model)
    sample = loaded.prepare([test_image])[0]
    dets = adapter.detect(sample, score_thr=0.3, topk=8)
    assert len(dets) > 0, f'{family}: no box with raised biases'
    assert np.all(np.diff(dets.scores) <= 0)
    # The same boxes as the detector's own predict().
    with torch.no_grad():
        pred = loaded.model.predict(sample.inputs, [sample.data_sample])[0].pred_instances
    pred = pred[pred.scores >= 0.3]
    top = torch.argsort(pred.scores, descending=True)[:len(dets)]
    np.testing.assert_allclose(dets.bboxes, pred.bboxes[top].numpy(), atol=1e-3)
    # The recovered prior reproduces each box's confidence, and its log-odds is consistent.
    with torch.no_grad():
        conf = adapter.box_scores(dets, 'confidence')(sample.inputs)[0].numpy()
        logit = adapter.box_scores(dets, 'logit')(sample.inputs)[0].numpy()
    np.testing.assert_allclose(conf, dets.scores, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(1 / (1 + np.exp(-logit)), dets.scores, rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize('package, rel, head', [
    ('mmdet', 'reppoints/reppoints-minmax_r50_fpn-gn_head-gn_1x_coco.py', 'RepPointsHead'),
    ('mmdet', 'paa/paa_r50_fpn_1x_coco.py', 'PAAHead'),
])
def test_unsupported_head_names_the_families(package, rel, head):
    module = __import__(package)
    cfg = Config.fromfile(os.path.join(os.path.dirname(module.__file__), '.mim', 'configs', rel))
    with pytest.raises(InputError, match='Box AM does not support') as err:
        build_adapter(LoadedModel(cfg).model)
    for name in (head, 'YOLOv5Head', 'YOLOv8Head', 'RetinaHead', 'FCOSHead'):
        assert name in str(err.value)
    assert 'Adding a detector family' in str(err.value)


def test_default_target_layers_are_the_neck_levels(detectors):
    for _, _, loaded in detectors.values():
        assert build_adapter(loaded.model).default_target_layers() == list(ALL_LEVELS)


# -- every method on every family -----------------------------------------------------------
@pytest.mark.parametrize('method', METHODS)
@pytest.mark.parametrize('family', FAMILIES)
def test_every_method_every_family(detectors, test_image, family, method):
    _, _, loaded = detectors[family]
    boxam = BoxAMInferencer(loaded, method, score_thr=0.3, topk=2,
                            ratio_channels_to_ablate=0.25 if method == 'ablationcam' else 1.0,
                            batch_size=32)
    result = boxam(test_image)
    h, w = result.image.shape[:2]
    n = len(result.detections)
    assert n == 2
    assert result.box_maps.shape == (n, h, w) and result.box_maps.dtype == np.float32
    assert result.combined.shape == (h, w)
    assert np.isfinite(result.box_maps).all()
    assert result.box_maps.min() >= 0 and result.box_maps.max() <= 1
    assert result.combined.max() > 0.5, f'{family}/{method}: empty combined map'
    np.testing.assert_allclose(result.combined, result.box_maps.max(0))


@pytest.mark.parametrize('family', FAMILIES)
def test_layercam_on_prediction_convs_peaks_at_the_box_prior(detectors, test_image, family):
    """Alignment: a box's score depends only on its own grid cell of the prediction conv, so
    LayerCAM there must peak at that cell, letterbox undone, on the original image."""
    _, _, loaded = detectors[family]
    layers = [f'bbox_head.head_module.{CLS_CONVS[family]}[{i}]' for i in range(3)]
    # conf > 0.5 needs class logit > 0 (and objectness > 0), so LayerCAM's map is positive.
    boxam = BoxAMInferencer(loaded, 'layercam', layers, score_thr=0.5, topk=4)
    result = boxam(test_image)
    dets, geom = result.detections, result.sample.geometry
    assert len(dets) > 0
    assert geom.offset != (0.0, 0.0) or family == 'yolox', 'expected a letterboxed input'
    strides = np.array(loaded.model.bbox_head.featmap_strides, dtype=float).reshape(3, -1)[:, 0]
    h, w = result.image.shape[:2]
    checked = 0
    for i in range(len(dets)):
        expected = (dets.cell_xy[i] - np.asarray(geom.offset)) / np.asarray(geom.scale)
        if not (0 <= expected[0] < w and 0 <= expected[1] < h):
            continue  # a prior in the letterbox padding: its peak is cut off with the padding
        checked += 1
        y, x = np.unravel_index(np.argmax(result.box_maps[i]), result.box_maps[i].shape)
        tol = 0.6 * strides[dets.level[i]] / min(geom.scale)
        assert np.hypot(x - expected[0], y - expected[1]) <= tol, (
            f'{family} box {i}: peak at {(x, y)}, its prior cell is at {expected}')
    assert checked > 0


# -- per-pixel gradients (mmyolo's box GradCAM, ODAM) ---------------------------------------
def _independent_odam(loaded, sample, dets, index: int, layer_name: str,
                      plus_plus: bool = False) -> np.ndarray:
    """relu(sum_c dS/dA * A) at one layer for box ``index``, by plain autograd, then presented
    as grad-cam presents every map: scaled to [0, 1], resized to the input, scaled again."""
    import cv2
    from mmcam.utils.modules import find_module
    adapter = build_adapter(loaded.model)
    layer = find_module(loaded.model, layer_name)
    kept = {}
    handle = layer.register_forward_hook(lambda m, i, out: kept.__setitem__('a', out))
    try:
        with torch.enable_grad():
            score = adapter.box_scores(dets, 'logit')(sample.inputs)[0, index]
    finally:
        handle.remove()
    act = kept['a']
    grad, = torch.autograd.grad(score, act)
    if plus_plus:  # Grad-CAM++'s alpha, kept per pixel
        g2 = grad ** 2
        alpha = g2 / (2 * g2 + act.sum((2, 3), keepdim=True) * g2 * grad + 1e-6)
        grad = torch.where(grad != 0, alpha, torch.zeros_like(alpha)) * grad.clamp(min=0)
    cam = torch.relu((grad * act).sum(1))[0].detach().numpy()
    cam = (cam - cam.min()) / (cam.max() - cam.min() + 1e-7)
    h, w = sample.inputs.shape[-2:]
    cam = cv2.resize(cam.astype(np.float32), (w, h))
    return (cam - cam.min()) / (cam.max() - cam.min() + 1e-7)


@pytest.mark.parametrize('family', ['yolov5', 'rtmdet'])
@pytest.mark.parametrize('method', ['gradcam', 'gradcam++'])
def test_per_pixel_gradcam_equals_plain_autograd(detectors, test_image, family, method):
    _, _, loaded = detectors[family]
    sample = loaded.prepare([test_image])[0]
    dets = build_adapter(loaded.model).detect(sample, 0.3, 4)
    assert len(dets) >= 2
    for i in range(len(dets)):
        layer = f'neck.out_layers[{dets.level[i]}]'
        boxam = BoxAMInferencer(loaded, method, [layer], topk=4)
        ours = boxam.input_maps(sample, dets)[i]
        expected = _independent_odam(loaded, sample, dets, i, layer, method == 'gradcam++')
        assert expected.max() > 0.99 and (expected > 0.01).mean() < 0.5  # a local map
        np.testing.assert_allclose(ours, expected, atol=1e-4)


def test_odam_is_gradcam_and_the_averaged_variant_differs(detectors, test_image):
    _, _, loaded = detectors['yolov6']
    maps = {m: BoxAMInferencer(loaded, m, topk=3)(test_image).box_maps
            for m in ('gradcam', 'odam', 'gradcam-avg')}
    np.testing.assert_array_equal(maps['gradcam'], maps['odam'])
    assert np.abs(maps['gradcam'] - maps['gradcam-avg']).max() > 0.3


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


@pytest.mark.parametrize('family', FAMILIES)
def test_two_boxes_of_one_class_get_their_own_maps(detectors, test_image, family):
    """Per-pixel maps follow each detection; the averaged (similarity) maps of two boxes of
    the same class on the same level look alike."""
    _, _, loaded = detectors[family]
    per_pixel = BoxAMInferencer(loaded, 'gradcam', topk=8)(test_image)
    averaged = BoxAMInferencer(loaded, 'gradcam-avg', topk=8)(test_image)
    dets = per_pixel.detections
    pairs = [(i, j) for i in range(len(dets)) for j in range(i + 1, len(dets))
             if dets.labels[i] == dets.labels[j] and dets.level[i] == dets.level[j]
             and np.hypot(*(dets.cell_xy[i] - dets.cell_xy[j])) > 32]
    assert pairs, f'{family}: no two distant boxes of one class on one level'
    for i, j in pairs:
        assert _correlation(per_pixel.box_maps[i], per_pixel.box_maps[j]) < 0.5
        peaks = [np.unravel_index(np.argmax(m), m.shape) for m in per_pixel.box_maps[[i, j]]]
        assert peaks[0] != peaks[1]
    similar = np.mean([_correlation(averaged.box_maps[i], averaged.box_maps[j])
                       for i, j in pairs])
    different = np.mean([_correlation(per_pixel.box_maps[i], per_pixel.box_maps[j])
                         for i, j in pairs])
    assert similar > different + 0.3, (similar, different)


@pytest.mark.parametrize('family', FAMILIES)
def test_explain_box_and_both(detectors, test_image, family):
    _, _, loaded = detectors[family]
    sample = loaded.prepare([test_image])[0]
    dets = build_adapter(loaded.model).detect(sample, 0.3, 2)
    maps = {what: BoxAMInferencer(loaded, 'gradcam', topk=2, explain=what).input_maps(
        sample, dets) for what in ('class', 'box', 'both')}
    for what, box_maps in maps.items():
        assert box_maps.shape[0] == 2
        assert np.isfinite(box_maps).all()
        assert box_maps.max() > 0.5, what
    assert np.abs(maps['class'] - maps['box']).max() > 0.1
    # both = the maximum of the class map and the box map
    np.testing.assert_allclose(maps['both'], np.maximum(maps['class'], maps['box']), atol=1e-5)
    # and the whole path to the original image runs
    result = BoxAMInferencer(loaded, 'gradcam++', topk=2, explain='both')(test_image)
    assert result.box_maps.shape == (2, *result.image.shape[:2])


def test_box_regression_columns_are_the_heads_outputs(detectors, test_image):
    """The scorer's regression columns are the raw outputs the kept boxes decode from."""
    _, _, loaded = detectors['rtmdet']
    adapter = build_adapter(loaded.model)
    sample = loaded.prepare([test_image])[0]
    dets = adapter.detect(sample, 0.3, 3)
    with torch.no_grad():
        out = adapter.box_scores(dets, 'logit', regression=True)(sample.inputs)[0]
        outs = adapter.head_outputs(sample.inputs)
    n = len(dets)
    regs = adapter.flatten_regression(outs)[0, torch.as_tensor(dets.origin)]
    torch.testing.assert_close(out[n:].reshape(n, 4), regs)
    # ... and decode (as predict_by_feat does) to the kept boxes, letterbox undone with the
    # pipeline's own record of it.
    decoded = adapter.decoded_boxes(outs, sample.data_sample.metainfo)[torch.as_tensor(dets.origin)].numpy()
    meta = sample.data_sample.metainfo
    top, _, left, _ = np.asarray(meta['pad_param'], dtype=np.float64)[:4]
    scale = np.tile(np.asarray(meta['scale_factor'], dtype=np.float64)[:2], 2)
    ori_h, ori_w = meta['ori_shape'][:2]
    decoded = np.clip((decoded - [left, top, left, top]) / scale, 0, [ori_w, ori_h, ori_w, ori_h])
    np.testing.assert_allclose(decoded, dets.bboxes, atol=0.05)


def test_explain_box_needs_a_gradient_method(detectors):
    _, _, loaded = detectors['yolov5']
    with pytest.raises(InputError, match='needs a gradient method.*gradcam, gradcam\\+\\+'):
        BoxAMInferencer(loaded, 'eigencam', explain='box')
    assert 'scorecam' not in gradient_box_methods()
    assert {'gradcam', 'gradcam++', 'gradcam-avg', 'layercam'} <= set(gradient_box_methods())


# -- options --------------------------------------------------------------------------------
def test_ablationcam_batch_size_does_not_change_the_map(detectors, test_image):
    _, _, loaded = detectors['yolov5']
    maps = [BoxAMInferencer(loaded, 'ablationcam', topk=1, batch_size=bs,
                            ratio_channels_to_ablate=0.5)(test_image).box_maps
            for bs in (1, 7)]
    assert maps[0].max() > 0
    np.testing.assert_allclose(maps[0], maps[1], atol=1e-5)


def test_ablationcam_ablates_once_for_all_boxes_and_equals_grad_cams_per_box(detectors,
                                                                          test_image):
    """Each channel ablated once, every box's score read from that copy: the same map as
    grad-cam's AblationCAM (zero ablation) run for each box on its own level."""
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
    from mmcam.cams.ablation import BoxAblationCAM, GradCAMAblationCAM, ZeroAblationLayer
    _, _, loaded = detectors['rtmdet']
    boxam = BoxAMInferencer(loaded, 'ablationcam', topk=3)
    sample = loaded.prepare([test_image])[0]
    dets = boxam.adapter.detect(sample, boxam.score_thr, 3)
    assert len(dets) == 3
    scorer = boxam.adapter.box_scores(dets, 'confidence')
    copies = sample.inputs.expand(len(dets), -1, -1, -1).contiguous()
    targets = [ClassifierOutputTarget(i) for i in range(len(dets))]
    for i, level in enumerate(dets.level):
        layer = [boxam.layers[level]]
        with GradCAMAblationCAM(scorer, layer, ablation_layer=ZeroAblationLayer(),
                                batch_size=16, ratio_channels_to_ablate=0.5) as cam:
            expected = cam(sample.inputs, [targets[i]])[0]
        with BoxAblationCAM(scorer, layer, ablation_layer=ZeroAblationLayer(), batch_size=16,
                            ratio_channels_to_ablate=0.5) as cam:
            cam.noise_floor = 0.0  # grad-cam keeps changes of any size
            got = cam(copies, targets)
        assert expected.std() > 0
        assert np.corrcoef(got[i].ravel(), expected.ravel())[0, 1] > 0.999
        others = [j for j in range(len(dets)) if dets.level[j] != level]
        assert all(got[j].max() == 0 for j in others)  # a level the box does not read


def _ablation_maps_with_and_without(monkeypatch, owner, shortcut, loaded, image, ratio):
    """AblationCAM box maps of the two best boxes with ``owner.shortcut`` on, then off."""
    maps = []
    for on in (True, False):
        monkeypatch.setattr(owner, shortcut, on)
        maps.append(BoxAMInferencer(loaded, 'ablationcam', topk=2,
                                    ratio_channels_to_ablate=ratio)(image).box_maps)
    return maps


def test_several_levels_and_tuple_layers(detectors, test_image):
    _, _, loaded = detectors['rtmdet']
    levels = BoxAMInferencer(loaded, 'gradcam', ALL_LEVELS, topk=2)(test_image)
    assert levels.combined.max() > 0.5
    # The whole neck (a tuple of levels): EigenCAM stacks them at a capped size.
    neck = BoxAMInferencer(loaded, 'eigencam', ['neck'], topk=2, max_shape=(4, 4))
    assert neck(test_image).combined.max() > 0.5
    with pytest.raises(InputError, match=r"outputs 3 feature maps.*neck.out_layers\[0\]"):
        BoxAMInferencer(loaded, 'gradcam', ['neck'], topk=2)(test_image)
    with pytest.raises(InputError, match='channel by channel'):
        BoxAMInferencer(loaded, 'ablationcam', ['neck'], topk=2)(test_image)


def test_norm_in_bbox_and_sum_combination():
    maps = np.random.default_rng(0).random((2, 20, 30)).astype(np.float32)
    boxes = np.array([[2, 3, 10, 12], [15.5, 0, 30, 8]])
    normed = normalise_in_boxes(maps, boxes)
    assert normed[0, 3:12, 2:10].max() == pytest.approx(1.0)
    assert normed[0, 3:12, 2:10].min() == pytest.approx(0.0)
    assert normed[0, 12:].max() == 0 and normed[0, :, 10:].max() == 0
    assert normed[1, 8:].max() == 0 and normed[1, :, :15].max() == 0
    total = combine_maps(maps, 'sum')
    np.testing.assert_allclose(total, maps.sum(0) / maps.sum(0).max(), rtol=1e-6)
    with pytest.raises(InputError, match='expected one of'):
        combine_maps(maps, 'mean')


# -- the command line -----------------------------------------------------------------------
def test_cli_per_box_save_cam_and_norm_in_bbox(detectors, test_image, tmp_path, capsys,
                                               monkeypatch):
    cfg, ckpt, _ = detectors['yolov6']
    out = tmp_path / 'out'
    for var in ('DISPLAY', 'WAYLAND_DISPLAY'):  # --show without a display must not block
        monkeypatch.delenv(var, raising=False)
    code = demo.main([test_image, cfg, ckpt, '--per-box', '--save-cam', '--topk', '3',
                      '--norm-in-bbox', '--device', 'cpu', '--out-dir', str(out), '--show'])
    err = capsys.readouterr().err
    assert code == 0, err
    assert '--show needs a display' in err
    h, w = mmcv.imread(test_image).shape[:2]
    assert mmcv.imread(str(out / 'chelsea.png')).shape[:2] == (h, w)
    grid = mmcv.imread(str(out / 'chelsea_per_box.png'))
    assert grid.shape[1] > 2 * w  # three panels side by side
    combined = np.load(out / 'chelsea.npy')
    assert combined.shape == (h, w) and combined.dtype == np.float32
    boxes = sorted(out.glob('chelsea_box*.npy'))
    assert len(boxes) == 3
    for path in boxes:
        m = np.load(path)
        assert m.shape == (h, w) and m.dtype == np.float32 and m.max() == pytest.approx(1.0)
    assert not list(out.glob('.*tmp*')), 'temporary files left behind'


def test_cli_folder_glob_and_cfg_options(detectors, test_image, tmp_path, capsys):
    cfg, ckpt, _ = detectors['yolov5']
    folder = tmp_path / 'imgs'
    folder.mkdir()
    for name in ('a.png', 'b.jpg'):
        mmcv.imwrite(mmcv.imread(test_image), str(folder / name))
    (folder / 'notes.txt').write_text('not an image')
    out = tmp_path / 'out'
    # max_per_img=1 reaches the head: one box even with --topk -1.
    code = demo.main([str(folder), cfg, ckpt, '--out-dir', str(out), '--save-cam',
                      '--per-box', '--cfg-options', 'model.test_cfg.max_per_img=1'])
    assert code == 0, capsys.readouterr().err
    assert sorted(p.name for p in out.glob('*.png')) == ['a.png', 'a_per_box.png', 'b.png',
                                                         'b_per_box.png']
    assert len(list(out.glob('a_box*.npy'))) == 1
    code = demo.main([str(folder / '*.jpg'), cfg, ckpt, '--out-dir', str(tmp_path / 'g'),
                      '--method', 'EigenCAM'])
    assert code == 0
    assert [p.name for p in (tmp_path / 'g').glob('*.png')] == ['b.png']
    # A broken image in a folder is skipped and reported; a bad layer stops the run at once.
    (folder / 'broken.png').write_bytes(b'not a png')
    capsys.readouterr()
    assert demo.main([str(folder), cfg, ckpt, '--out-dir', str(tmp_path / 'h')]) == 1
    err = capsys.readouterr().err
    assert 'skipped' in err and 'broken.png' in err and '2 of 3 images done' in err
    assert demo.main([str(folder), cfg, ckpt, '--out-dir', str(tmp_path / 'i'),
                      '--target-layers', 'neck']) == 2
    err = capsys.readouterr().err
    assert err.count('cannot run on layer') == 1 and 'skipped' not in err


def test_cli_no_detection_writes_the_plain_image(detectors, test_image, tmp_path, capsys):
    cfg, ckpt, _ = detectors['yolox']
    out = tmp_path / 'out'
    code = demo.main([test_image, cfg, ckpt, '--score-thr', '1.0', '--out-dir', str(out),
                      '--save-cam'])
    err = capsys.readouterr().err
    assert code == 0
    assert 'no detection with score >= 1' in err and 'lower --score-thr' in err
    picture = mmcv.imread(str(out / 'chelsea.png'))
    original = mmcv.imread(test_image)
    assert picture.shape == original.shape
    assert not np.array_equal(picture, original)  # the note is drawn on it
    assert np.abs(picture.astype(int) - original)[-40:].max() == 0  # the rest is untouched
    assert np.load(out / 'chelsea.npy').max() == 0


@pytest.mark.parametrize('args, message', [
    (['--target-layers', 'neck.out_layer[2]'], 'Closest names: neck.out_layers'),
    (['--target-layers', 'neck'], 'cannot run on layer'),
    (['--method', 'fullgrad'], 'not supported for box AM; expected one of gradcam'),
    (['--method', 'eigencam', '--explain', 'box'], 'needs a gradient method'),
    (['--ratio-channels-to-ablate', '1.5', '--method', 'ablationcam'], 'outside (0, 1]'),
    (['--topk', '0'], 'leaves no box'),
    (['--score-thr', '1.5'], 'outside [0, 1]'),
    (['--device', 'gpu'], 'is not a device name'),
    (['--device', 'cuda:99'], 'CUDA device(s); use --device cpu'),
])
def test_cli_bad_inputs_are_one_line_errors(detectors, test_image, tmp_path, capsys, args,
                                            message):
    cfg, ckpt, _ = detectors['yolov5']
    code = demo.main([test_image, cfg, ckpt, '--out-dir', str(tmp_path)] + args)
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and 'Traceback' not in err
    lines = [line for line in err.strip().splitlines() if not line.startswith('device: ')]
    assert len(lines) == 1, err


def test_cli_missing_image_and_preview(detectors, tmp_path, capsys):
    cfg, ckpt, _ = detectors['rtmdet']
    assert demo.main([str(tmp_path / 'nope.png'), cfg, ckpt]) == 2
    assert 'does not exist' in capsys.readouterr().err
    assert demo.main(['unused', cfg, ckpt, '--preview-model']) == 0
    assert 'out_layers' in capsys.readouterr().out


# -- quality, on the trained demo detectors -------------------------------------------------
#: The trained demo detectors: the four mmyolo families and mmdet's Faster R-CNN and RetinaNet.
TRAINED = [*FAMILIES, 'faster_rcnn', 'retinanet']
DEMO = {f: (REPO / 'configs' / 'demo' / f'det_{f}.py', REPO / 'demo' / 'checkpoints' /
            f'det_{f}.pth') for f in TRAINED}


@functools.lru_cache(maxsize=None)
def _scratch() -> tempfile.TemporaryDirectory:
    """One folder for the evaluation runs below (scenes, reports: about 5 MB a run), removed
    when the test process exits."""
    return tempfile.TemporaryDirectory(prefix='mmcam_boxam_')


@functools.lru_cache(maxsize=None)
def _eval_scenes(count: int = 20) -> str:
    """Held-out detection scenes of the docs (seed 7; the first 20 are the docs' tables' scenes,
    80 those of the bar), written once per session."""
    from mmcam.datasets.digit_scenes import write_detection
    root = tempfile.mkdtemp(prefix=f'eval{count}_', dir=_scratch().name)
    write_detection(root, 'test', count, seed=7)
    return root


@functools.lru_cache(maxsize=None)
def trained_metrics(family: str, method: str, scenes: int = 20) -> dict:
    """tools/eval_cam.py's localisation figures on held-out scenes of the docs (once per
    session): each box's own map against that box, the combined map against all boxes."""
    import json

    from mmcam.evaluation.tool import main as eval_cam
    cfg, ckpt = DEMO[family]
    work_dir = tempfile.mkdtemp(prefix=f'{family}_{method}_', dir=_scratch().name)
    assert eval_cam([str(cfg), str(ckpt), '--methods', method, '--metrics', 'localisation',
                     '--tolerance', '4', '--work-dir', work_dir, '--cfg-options',
                     f'test_dataloader.dataset.data_root={_eval_scenes(scenes)}/']) == 0
    with open(os.path.join(work_dir, 'results.json')) as f:
        s = json.load(f)['summary'][method]
    return dict(boxes=s['boxes'], peak_in_box=s['peak_in_own_box']['mean'],
                peak_within_4px=s['peak_in_own_box_4px']['mean'],
                peak_chance=s['peak_chance']['mean'],
                energy_ratio=s['energy_ratio_detections']['mean'])


@pytest.mark.parametrize('family', TRAINED)
def test_trained_detector_maps_point_at_their_boxes(family):
    grad = trained_metrics(family, 'gradcam')
    layer = trained_metrics(family, 'layercam')
    assert grad['boxes'] >= 10, f'{family}: only {grad["boxes"]} detections on 20 test scenes'
    # The combined map's mass inside the detected boxes beats a uniform map's.
    assert grad['energy_ratio'] > 1.5, grad
    assert layer['energy_ratio'] > 1.5, layer
    # A box's own LayerCAM map peaks in that box far more often than a random peak would
    # (about 2%); GradCAM's per-box peak is the subject of the next test.
    assert layer['peak_in_box'] >= max(0.75, 5 * layer['peak_chance']), layer
    assert grad['peak_in_box'] >= 5 * grad['peak_chance'], grad


@pytest.mark.parametrize('family', TRAINED)
def test_per_pixel_gradcam_follows_its_box_better_than_the_averaged_one(family):
    per_pixel = trained_metrics(family, 'gradcam')
    averaged = trained_metrics(family, 'gradcam-avg')
    assert per_pixel['peak_in_box'] >= averaged['peak_in_box'] + 0.15, (per_pixel, averaged)
    assert per_pixel['energy_ratio'] > averaged['energy_ratio'], (per_pixel, averaged)


@pytest.mark.parametrize('family', TRAINED)
def test_trained_detector_gradcam_peaks_in_its_own_box(family):
    """The 90% bar, for the default per-box map on 80 held-out scenes (docs/en/boxam_vis.md:
    YOLOv5 96.6 %, YOLOv6 97.3 %, YOLOX 91.9 %, RTMDet 94.3 %, RetinaNet 93.1 %, Faster R-CNN
    91.8 %; on 20 scenes one box moves a figure by 1-1.5 points, so the bar is read on 80)."""
    grad = trained_metrics(family, 'gradcam', scenes=80)
    assert grad['peak_in_box'] >= 0.9, grad


@pytest.mark.parametrize('family', ['yolov5', 'retinanet', 'faster_rcnn'])
def test_gradient_box_maps_share_the_detection_pass(family, monkeypatch):
    """Gradient box AM runs the backbone once per image (the scores reuse the detection's
    backbone and neck pass, graph included), and its maps are those of a separate pass."""
    from contextlib import nullcontext
    cfg, ckpt = DEMO[family]
    boxam = BoxAMInferencer(LoadedModel(str(cfg), str(ckpt)), 'gradcam', score_thr=0.3)
    image = str(REPO / 'demo' / 'digits_det.png')
    calls = []
    handle = boxam.loaded.model.backbone.register_forward_hook(lambda *a: calls.append(1))
    try:
        shared = boxam(image)
        once = len(calls)
        monkeypatch.setattr(type(boxam.adapter), 'features_once',
                            lambda self, inputs: nullcontext())
        separate = boxam(image)
    finally:
        handle.remove()
    assert len(shared.detections) >= 2 and once == 1 and len(calls) - once == 2
    np.testing.assert_array_equal(shared.detections.bboxes, separate.detections.bboxes)
    assert shared.box_maps.max() > 0
    np.testing.assert_allclose(shared.box_maps, separate.box_maps, atol=1e-5)


@pytest.mark.parametrize('family', FAMILIES)
def test_ablationcam_replaying_the_neck_changes_nothing(family, monkeypatch):
    """AblationCAM re-runs only the out_layers and the head on one backbone + neck pass: the
    maps of the trained demo detectors are those of full re-runs."""
    from mmcam.utils.modules import find_module
    cfg, ckpt = DEMO[family]
    loaded = LoadedModel(str(cfg), str(ckpt))
    image = str(REPO / 'demo' / 'digits_det.png')
    maps = _ablation_maps_with_and_without(monkeypatch, BoxAMInferencer, 'replay_for_ablation',
                                           loaded, image, 0.25)
    assert maps[0].max() > 0
    np.testing.assert_allclose(maps[0], maps[1], atol=1e-5)
    # It is on for the neck's levels (the default layers) and off for any other layer.
    adapter, inputs = build_adapter(loaded.model), loaded.prepare([image])[0].inputs
    with adapter.replay(inputs, [find_module(loaded.model, n) for n in ALL_LEVELS]) as on:
        assert on
    with adapter.replay(inputs, [loaded.model.backbone]) as on:
        assert not on


@pytest.mark.parametrize('family', ['yolov6', 'rtmdet'])
def test_random_weights_at_score_thr_0_lose_no_picture(mmyolo_configs, tmp_path, capsys,
                                                       family):
    """A head early in training returns inverted, zero-area and out-of-image boxes; with
    mmyolo's shipped -s configs, seeded random weights and --score-thr 0 they are explained
    and drawn (ordered and clipped), never a reason to lose the picture."""
    from mmengine.runner.checkpoint import save_checkpoint
    from skimage import data
    image = tmp_path / 'photo.png'
    mmcv.imwrite(mmcv.imresize(mmcv.rgb2bgr(data.astronaut()), (500, 360)), str(image))
    cfg = Config.fromfile(str(mmyolo_configs / FAMILIES[family]))
    cfg_path = tmp_path / 'cfg.py'
    cfg.dump(str(cfg_path))
    torch.manual_seed(0)
    model = LoadedModel(str(cfg_path)).model
    save_checkpoint({'state_dict': model.state_dict()}, str(tmp_path / 'random.pth'))
    boxes = BoxAMInferencer(LoadedModel(str(cfg_path), str(tmp_path / 'random.pth')),
                            score_thr=0.0, topk=20)(str(image)).detections.bboxes
    h, w = 360, 500
    odd = (boxes[:, 2] <= boxes[:, 0]) | (boxes[:, 3] <= boxes[:, 1]) | (boxes < 0).any(1) | \
        (boxes[:, 2] > w) | (boxes[:, 3] > h)
    code = demo.main([str(image), str(cfg_path), str(tmp_path / 'random.pth'), '--score-thr',
                      '0', '--topk', '20', '--per-box', '--out-dir', str(tmp_path / 'out')])
    err = capsys.readouterr().err
    assert code == 0, err
    assert mmcv.imread(str(tmp_path / 'out' / 'photo.png')).shape[:2] == (h, w)
    assert (tmp_path / 'out' / 'photo_per_box.png').is_file()
    assert odd.any(), 'expected the degenerate boxes of an untrained head (20 of 20 seen)'
