"""tools/vis_cam.py with its defaults (method, target layer) on one shipped config per model
family of the mmpretrain wheel: random weights, a small photo, the smallest variant, and the
smallest input each architecture takes (None: the config's own 224 px pipeline)."""
from __future__ import annotations

import inspect
import os

import numpy as np
import pytest
from mmengine.config import Config

from _cam_models import CLASSES, make_checkpoint, write_photo

#: family -> (shipped config, input side in px or None for the config's own pipeline).
FAMILIES = {
    'clip': ('clip/vit-base-p32_pt-64xb64_in1k.py', 64),
    'conformer': ('conformer/conformer-tiny-p16_8xb128_in1k.py', 64),
    'convmixer': ('convmixer/convmixer-768-32_10xb64_in1k.py', 64),
    'convnext': ('convnext/convnext-tiny_32xb128_in1k.py', 64),
    'convnext_v2': ('convnext_v2/convnext-v2-tiny_32xb32_in1k.py', 64),
    'csra': ('csra/resnet101-csra_1xb16_voc07-448px.py', 64),
    'cspnet': ('cspnet/cspresnet50_8xb32_in1k.py', 64),
    'davit': ('davit/davit-tiny_4xb256_in1k.py', None),
    'deit': ('deit/deit-tiny_4xb256_in1k.py', 64),
    'deit3': ('deit3/deit3-small-p16_64xb64_in1k.py', 64),
    'densenet': ('densenet/densenet121_4xb256_in1k.py', 64),
    'edgenext': ('edgenext/edgenext-xxsmall_8xb256_in1k.py', 64),
    'efficientformer': ('efficientformer/efficientformer-l1_8xb128_in1k.py', None),
    'efficientnet': ('efficientnet/efficientnet-b0_8xb32_in1k.py', 64),
    'efficientnet_v2': ('efficientnet_v2/efficientnetv2-b0_8xb32_in1k.py', 64),
    'eva02': ('eva02/eva02-tiny-p14_in1k.py', 64),
    'hivit': ('hivit/hivit-tiny-p16_16xb64_in1k.py', 64),
    'hornet': ('hornet/hornet-tiny_8xb128_in1k.py', 64),
    'hrnet': ('hrnet/hrnet-w18_4xb32_in1k.py', 64),
    'inception_v3': ('inception_v3/inception-v3_8xb32_in1k.py', 96),
    'levit': ('levit/levit-128_8xb256_in1k.py', None),
    'mlp_mixer': ('mlp_mixer/mlp-mixer-base-p16_64xb64_in1k.py', 64),
    'mobilenet_v2': ('mobilenet_v2/mobilenet-v2_8xb32_in1k.py', 64),
    'mobilenet_v3': ('mobilenet_v3/mobilenet-v3-small_8xb128_in1k.py', 64),
    'mobileone': ('mobileone/mobileone-s0_8xb32_in1k.py', 64),
    'mobilevit': ('mobilevit/mobilevit-xxsmall_8xb128_in1k.py', 64),
    'mvit': ('mvit/mvitv2-tiny_8xb256_in1k.py', 64),
    'poolformer': ('poolformer/poolformer-s12_32xb128_in1k.py', 64),
    'regnet': ('regnet/regnetx-400mf_8xb128_in1k.py', 64),
    'replknet': ('replknet/replknet-XL_32xb64_in1k-320px.py', 64),  # 31B's fails to load
    'repmlp': ('repmlp/repmlp-base_8xb64_in1k.py', 64),
    'repvgg': ('repvgg/repvgg-B0_8xb32_in1k.py', 64),
    'res2net': ('res2net/res2net50-w14-s8_8xb32_in1k.py', 64),
    'resnest': ('resnest/resnest50_32xb64_in1k.py', 64),
    'resnet': ('resnet/resnet18_8xb32_in1k.py', 64),
    'resnext': ('resnext/resnext50-32x4d_8xb32_in1k.py', 64),
    'revvit': ('revvit/revvit-small_8xb256_in1k.py', 64),
    'riformer': ('riformer/riformer-s12_8xb128_in1k.py', 64),
    'seresnet': ('seresnet/seresnet50_8xb32_in1k.py', 64),
    'shufflenet_v1': ('shufflenet_v1/shufflenet-v1-1x_16xb64_in1k.py', 64),
    'shufflenet_v2': ('shufflenet_v2/shufflenet-v2-1x_16xb64_in1k.py', 64),
    'swin_transformer': ('swin_transformer/swin-tiny_16xb64_in1k.py', None),
    'swin_transformer_v2': ('swin_transformer_v2/swinv2-tiny-w8_16xb64_in1k-256px.py', None),
    't2t_vit': ('t2t_vit/t2t-vit-t-14_8xb64_in1k.py', 64),
    'tinyvit': ('tinyvit/tinyvit-5m_8xb256_in1k.py', None),
    'tnt': ('tnt/tnt-s-p16_16xb64_in1k.py', 64),
    'twins': ('twins/twins-svt-small_8xb128_in1k.py', 64),
    'van': ('van/van-tiny_8xb128_in1k.py', 64),
    'vgg': ('vgg/vgg11_8xb32_in1k.py', None),
    'vig': ('vig/vig-tiny_8xb128_in1k.py', None),
    'vision_transformer': ('vision_transformer/vit-base-p16_64xb64_in1k.py', 64),
    'wrn': ('wrn/wide-resnet50_timm_8xb32_in1k.py', 64),
    'xcit': ('xcit/xcit-tiny-12-p8_8xb128_in1k.py', 64),
}

#: Run by default (about 90 s in all on 2 cores): the families whose default layer needed the
#: probe (ConvNeXt, EdgeNeXt, LeViT, TinyViT, VGG) and one of each kind of model. The others run
#: with MMCAM_ALL_FAMILIES=1 (all 53 passed, about 5 min, when this test was written).
DEFAULT = {'convnext', 'deit', 'edgenext', 'efficientformer', 'eva02', 'levit', 'mobilenet_v3',
           'poolformer', 'regnet', 'resnet', 't2t_vit', 'tinyvit', 'vgg', 'vision_transformer'}

#: Families of the wheel left out, and why.
LEFT_OUT = {
    'eva': 'only giant variants ship (eva-g, 1 B parameters: minutes per image on 2 cores)',
    'lenet': 'its MNIST config takes 1-channel 32 px input; mmcam reads images as colour',
}


def _config(mmpretrain_configs, rel: str, size):
    from mmpretrain.registry import MODELS
    cfg = Config.fromfile(str(mmpretrain_configs / rel))
    if 'num_classes' in cfg.model.head:
        cfg.model.head.num_classes = len(CLASSES)
    if size is not None:
        cfg.test_dataloader.dataset.pipeline = [
            dict(type='LoadImageFromFile'), dict(type='Resize', scale=(size, size)),
            dict(type='PackInputs')]
        backbone = MODELS.get(cfg.model.backbone.type)
        if 'img_size' in inspect.signature(backbone.__init__).parameters:
            cfg.model.backbone.img_size = size
    return cfg


@pytest.fixture(scope='module')
def photo(tmp_path_factory):
    return write_photo(tmp_path_factory.mktemp('families') / 'cat.png', 60, 80)


@pytest.mark.parametrize('family', [
    pytest.param(f, marks=pytest.mark.skipif(
        f not in DEFAULT and not os.environ.get('MMCAM_ALL_FAMILIES'),
        reason='slow on 2 cores; MMCAM_ALL_FAMILIES=1 runs it')) for f in sorted(FAMILIES)])
def test_defaults_work_on_every_family(mmpretrain_configs, tmp_path, photo, capsys, family):
    from mmcam.cli import vis_cam
    rel, size = FAMILIES[family]
    cfg = _config(mmpretrain_configs, rel, size)
    cfg_path = tmp_path / 'model.py'
    cfg.dump(str(cfg_path))
    ckpt = make_checkpoint(cfg, tmp_path / 'model.pth')
    out = tmp_path / 'cam.png'
    code = vis_cam.main([photo, str(cfg_path), ckpt, '--save-path', str(out), '--save-cam'])
    _, err = capsys.readouterr()
    assert code == 0, err
    assert 'target layer(s): backbone.' in err and '(default: ' in err
    cam = np.load(tmp_path / 'cam.npy')
    assert cam.shape == (60, 80) and cam.dtype == np.float32 and np.isfinite(cam).all()
    assert out.exists()


def test_every_classifier_family_of_the_wheel_is_covered(mmpretrain_configs):
    """A family the wheel ships with an ImageClassifier config is in FAMILIES or LEFT_OUT."""
    found = set()
    for folder in mmpretrain_configs.iterdir():
        if not folder.is_dir() or folder.name == '_base_':
            continue
        for path in sorted(folder.glob('*.py')):
            text = path.read_text()
            if 'headless' in path.name or ('ImageClassifier' not in text and
                                           '_base_' not in text):
                continue
            try:
                model = Config.fromfile(str(path)).get('model', {})
            except Exception:  # configs that need packages not installed (multimodal)
                continue
            if model.get('type') == 'ImageClassifier' and model.get('head') and \
                    model.get('backbone'):
                found.add(folder.name)
                break
    assert found - set(FAMILIES) - set(LEFT_OUT) == set()
