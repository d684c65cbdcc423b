"""Helpers for the CAM tests: real mmpretrain configs, small inputs, real checkpoint files.

The models are built from the configs shipped in the mmpretrain wheel with random weights,
saved with mmengine's ``save_checkpoint`` and loaded back through mmcam, exactly as a user's
checkpoint would be. Only sizes change (input size, number of classes) to keep CPU time low.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import cv2
import numpy as np
import torch
from mmengine.config import Config
from mmengine.runner import save_checkpoint

CLASSES = tuple(f'class_{i}' for i in range(10))

CONFIGS = {
    'resnet50': 'resnet/resnet50_8xb32_in1k.py',
    'resnet18': 'resnet/resnet18_8xb32_in1k.py',
    'mobilenet_v3': 'mobilenet_v3/mobilenet-v3-small_8xb128_in1k.py',
    'vit_b16': 'vision_transformer/vit-base-p16_64xb64_in1k.py',
    'deit_distilled': 'deit/deit-tiny-distilled_4xb256_in1k.py',
    'swin_t': 'swin_transformer/swin-tiny_16xb64_in1k.py',
    't2t_vit': 't2t_vit/t2t-vit-t-14_8xb64_in1k.py',
}


def _pipeline(cfg: Config) -> list:
    return cfg.test_dataloader.dataset.pipeline


def small_config(configs_root: Path, key: str, crop: Optional[int] = 112,
                 resize: Optional[int] = None, img_size: Optional[int] = None,
                 test_pipeline: Optional[list] = None, **backbone) -> Config:
    """A shipped config with 10 classes and (optionally) a smaller ResizeEdge + CenterCrop.

    ``img_size`` and ``backbone`` keywords change the backbone (ViT's position embedding size,
    Swin's ``pad_small_map``); the architecture itself stays the config's.
    """
    cfg = Config.fromfile(str(configs_root / CONFIGS[key]))
    cfg.model.head.num_classes = len(CLASSES)
    if img_size is not None:
        cfg.model.backbone.img_size = img_size
    cfg.model.backbone.update(backbone)
    if test_pipeline is not None:
        cfg.test_dataloader.dataset.pipeline = test_pipeline
    elif crop is not None:
        for step in _pipeline(cfg):
            if step['type'] == 'ResizeEdge':
                step['scale'] = resize or int(crop * 8 / 7)
            elif step['type'] == 'CenterCrop':
                step['crop_size'] = crop
    return cfg


def make_checkpoint(cfg: Config, path: Path, seed: int = 0) -> str:
    """Random weights of ``cfg``'s model saved as an mmengine checkpoint with classes.

    PyTorch's default initialisation of each layer, without the config's ``init_weights``:
    that one zeroes the last norm of every ResNet block (``zero_init_residual``), which makes
    the default CAM layer output a constant.
    """
    from mmcam.apis import LoadedModel
    torch.manual_seed(seed)
    model = LoadedModel(cfg).model
    meta = {'dataset_meta': {'classes': CLASSES}, 'epoch': np.int64(1)}
    save_checkpoint({'state_dict': model.state_dict(), 'meta': meta}, str(path))
    return str(path)


def write_photo(path: Path, height: int, width: int, x0: int = 0) -> str:
    """A real photograph (scikit-image's cat) resized to ``height`` x ``width``."""
    from skimage import data
    img = data.chelsea()[:, x0:]
    img = cv2.resize(img, (width, height), interpolation=cv2.INTER_AREA)
    cv2.imwrite(str(path), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    return str(path)


def assert_valid_map(cam: np.ndarray, hw) -> None:
    """The contract of every map: original-image size, float32, finite, in [0, 1], not flat."""
    assert cam.shape == tuple(hw), (cam.shape, hw)
    assert cam.dtype == np.float32
    assert np.isfinite(cam).all()
    assert cam.min() >= 0.0 and cam.max() <= 1.0
    assert cam.max() - cam.min() > 0.05, 'the map is flat'
