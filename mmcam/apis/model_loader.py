"""The inferencer stage: a config + checkpoint -> a model in eval mode and its test pipeline.

Shared by every tool (classification CAM, feature maps, box AM) so that a model is loaded once
and an image always goes through the same path::

    image file/array -> test pipeline -> data_preprocessor -> (inputs, data_sample, geometry)
"""
from __future__ import annotations

import copy
import glob
import os
import warnings
from typing import List, Optional, Sequence, Union

import cv2
import mmcv
import numpy as np
from PIL import Image
import torch
from mmengine.config import Config
from mmengine.dataset import Compose, pseudo_collate
from mmengine.registry import DefaultScope
from torch import nn

from mmcam.geometry import InputGeometry
from mmcam.structures import ImageLike, Sample  # noqa: F401  (re-exported)
from mmcam.utils.checkpoint import load_checkpoint
from mmcam.utils.io import native_stderr_silenced


#: default_scope of a config -> the kind of model it builds.
_TASKS = {'mmpretrain': 'classification', 'mmdet': 'detection', 'mmyolo': 'detection'}


# Defined in mmcam.utils.errors so that mmcam.cams/mmcam.models can raise it without importing
# mmcam.apis (which imports them: a cycle); re-exported here for existing imports.
from mmcam.utils.errors import InputError  # noqa: E402,F401


def read_image(image: ImageLike) -> np.ndarray:
    """Read an image as 3-channel BGR uint8, whatever it was stored as.

    Grayscale is replicated to three channels, an alpha channel is dropped and 16-bit or float
    images are rescaled to 8 bit, so every image a user has reaches the model.
    """
    if isinstance(image, np.ndarray):
        img = image
    else:
        if not os.path.isfile(image):
            raise InputError(f'Image {image!r} does not exist. Expected an image file, a folder '
                             'or a glob pattern; check the path.')
        try:
            with native_stderr_silenced():  # libpng's own line; the reason is ours, below
                img = mmcv.imread(image, flag='unchanged')
        except (OSError, cv2.error) as err:  # unreadable, or empty: OpenCV asserts on 0 bytes
            reason = 'is empty (0 bytes)' if os.path.getsize(image) == 0 else \
                f'cannot be read ({type(err).__name__}: {str(err).strip().splitlines()[-1]})'
            raise InputError(f'Image {image!r} {reason}. Expected a readable image file; '
                             'check the file or leave it out.') from None
        if img is None:
            with open(image, 'rb') as f:
                magic = f.read(8)
            kind = 'PNG' if magic.startswith(b'\x89PNG') else \
                'JPEG' if magic.startswith(b'\xff\xd8') else None
            if kind:
                raise InputError(f'{image!r} is a truncated or corrupt {kind} file. Expected a '
                                 'complete image; copy or export it again, or leave it out.')
            raise InputError(f'{image!r} is not an image OpenCV can read. Expected a PNG, JPEG, '
                             'BMP, TIFF or WebP file; convert it or leave it out.')
        img = exif_upright(img, image)
    if img.dtype != np.uint8:
        img = img.astype(np.float64)
        lo, hi = float(img.min()), float(img.max())
        img = ((img - lo) / (hi - lo + 1e-12) * 255).round().astype(np.uint8)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    elif img.ndim == 3 and img.shape[2] == 1:
        img = np.repeat(img, 3, axis=2)
    elif img.ndim == 3 and img.shape[2] == 4:
        img = img[..., :3]
    if img.ndim != 3 or img.shape[2] != 3:
        raise InputError(f'Image of shape {img.shape} is not supported: expected H x W, '
                         'H x W x 1, H x W x 3 or H x W x 4.')
    return np.ascontiguousarray(img)


def _examples(names: Sequence[str], total: int) -> str:
    """'3 of 120 weights (e.g. a, b)' for a message."""
    shown = ', '.join(names[:2]) + (', ...' if len(names) > 2 else '')
    return f'{len(names)} of {total} weights' + (f' (e.g. {shown})' if names else '')


#: EXIF orientation -> how to turn the stored pixels into the picture a viewer shows.
_EXIF_TURNS = {2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
               5: lambda a: a.swapaxes(0, 1), 6: lambda a: np.rot90(a, -1),
               7: lambda a: a[::-1, ::-1].swapaxes(0, 1), 8: lambda a: np.rot90(a, 1)}


def exif_upright(img: np.ndarray, path: str) -> np.ndarray:
    """The image as viewers show it: a camera's EXIF orientation applied (OpenCV's 'unchanged'
    read ignores it, while the pipelines' colour reads apply it: maps must follow what the
    user sees and what the model saw)."""
    try:
        with Image.open(path) as pil:
            orientation = pil.getexif().get(0x0112, 1)
    except Exception:  # noqa: BLE001 - no EXIF to read is no rotation
        return img
    turn = _EXIF_TURNS.get(orientation)
    return np.ascontiguousarray(turn(img)) if turn else img


def _build_config(config: Union[str, Config], cfg_options: Optional[dict]) -> Config:
    if isinstance(config, (str, os.PathLike)):
        if not os.path.isfile(config):
            raise InputError(f'Config {config!r} does not exist. Expected an OpenMMLab config '
                             'file (.py); mmpretrain and mmyolo ship theirs under '
                             '<site-packages>/<package>/.mim/configs/.')
        config = Config.fromfile(config)
    else:
        config = copy.deepcopy(config)
    if cfg_options:
        for key, value in cfg_options.items():
            values = value if isinstance(value, (list, tuple)) else [value]
            if any(isinstance(v, str) and v.replace(' ', '').startswith('dict(') for v in values):
                raise InputError(f'--cfg-options {key}: a dict(...) value is read as a string. '
                                 'Expected numbers, strings, [lists] or (tuples); set a dict '
                                 'field by field (key.field=value) or edit the config file.')
        config.merge_from_dict(cfg_options)
    return config


def parse_device(device: Union[str, torch.device]) -> torch.device:
    """A torch device that exists here, or an :class:`InputError` that says what does."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise InputError(f'--device {device!r} is not a device name; expected cpu, cuda or '
                         'cuda:N.') from None
    if dev.type == 'cuda':
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0 or (dev.index or 0) >= count:
            raise InputError(f'--device {device}: this machine has {count} CUDA device(s); '
                             'use --device cpu' + (' or cuda:0.' if count else '.'))
    return dev


def _recording_crop(crop_img):
    """Wrap a crop transform's ``_crop_img(results, bboxes)`` to store the box in the results."""
    def crop_and_record(results: dict, bboxes: np.ndarray) -> None:
        results['img_crop_bbox'] = np.asarray(bboxes, dtype=np.float64).reshape(-1)[:4].copy()
        return crop_img(results, bboxes)
    return crop_and_record


class LoadedModel:
    """A model built from an OpenMMLab config, its checkpoint loaded, ready for explaining."""

    def __init__(self,
                 config: Union[str, Config],
                 checkpoint: Optional[str] = None,
                 device: str = 'cpu',
                 cfg_options: Optional[dict] = None,
                 allow_unsafe_checkpoint: bool = False) -> None:
        self.cfg = _build_config(config, cfg_options)
        scope = self.cfg.get('default_scope', None)
        if scope not in _TASKS:
            raise InputError(
                f"The config's default_scope is {scope!r}; expected one of {sorted(_TASKS)} "
                '(an mmpretrain classifier or an mmdet/mmyolo detector).')
        self.scope, self.task = scope, _TASKS[scope]
        if scope == 'mmyolo':
            from mmyolo.utils import register_all_modules
            register_all_modules(init_default_scope=False)
        self.device = parse_device(device)
        # Built in the config's scope, without changing the process-wide default scope:
        # another library's API used in the same process finds it as it was.
        with DefaultScope.overwrite_default_scope(scope):
            self.model = self._build_model()
            self.pipeline = self._build_pipeline()
        self.checkpoint_meta: dict = {}
        if checkpoint is not None:
            ckpt = load_checkpoint(self.model, checkpoint, map_location='cpu',
                                   allow_unsafe=allow_unsafe_checkpoint or None)
            state = ckpt.get('state_dict', ckpt)
            keys = {k[7:] if k.startswith('module.') else k for k in state}
            wanted = set(self.model.state_dict())
            missing, unexpected = sorted(wanted - keys), sorted(keys - wanted)
            # A checkpoint of another architecture loads "successfully" (strict=False) with
            # nothing in it used: explaining random weights is worse than failing.
            if not keys & wanted:
                raise InputError(
                    f'No weight in checkpoint {checkpoint!r} fits the model of this config '
                    f'({type(self.model).__name__}): {_examples(missing, len(wanted))} of '
                    f'the model missing, {_examples(unexpected, len(keys))} of the checkpoint '
                    'unexpected; expected the checkpoint trained with this config. Check that '
                    'CONFIG and CHECKPOINT belong together.')
            if missing or unexpected:
                warnings.warn(f'checkpoint {checkpoint!r} does not fully fit the model: '
                              f'{_examples(missing, len(wanted))} of the model missing (kept '
                              f'as initialised), {_examples(unexpected, len(keys))} of the '
                              'checkpoint unused')
            self.checkpoint_meta = ckpt.get('meta', {}) or {}
        self.model.dataset_meta = self.dataset_meta = self._dataset_meta()
        self.model.to(self.device).eval()

    # -- construction -------------------------------------------------------------------
    def _build_model(self) -> nn.Module:
        if self.scope == 'mmpretrain':
            from mmpretrain.registry import MODELS
        elif self.scope == 'mmyolo':
            from mmyolo.registry import MODELS
        else:
            from mmdet.registry import MODELS
        model_cfg = copy.deepcopy(self.cfg.model)
        # mmpretrain configs keep the data_preprocessor (mean/std, to_rgb) at the top level;
        # mmpretrain.apis.get_model moves it into the model the same way.
        if self.scope == 'mmpretrain' and self.cfg.get('data_preprocessor') is not None:
            model_cfg.setdefault('data_preprocessor', copy.deepcopy(self.cfg.data_preprocessor))
        # No pretrained downloads: weights come from the checkpoint given to mmcam.
        if isinstance(model_cfg.get('backbone'), dict):
            model_cfg.backbone.pop('init_cfg', None)
        model_cfg.pop('init_cfg', None)
        if model_cfg.get('pretrained') is not None:
            model_cfg.pretrained = None
        model = MODELS.build(model_cfg)
        # mmdet 3.3's SSDHead builds no loss_cls, but the predict_by_feat it inherits reads
        # loss_cls.custom_cls_channels, so SSD cannot predict at all: give it an empty one.
        head = getattr(model, 'bbox_head', None)
        if head is not None and hasattr(head, 'predict_by_feat') and not hasattr(head,
                                                                                 'loss_cls'):
            head.loss_cls = nn.Identity()
        return model

    def _dataset_meta(self) -> dict:
        meta = self.checkpoint_meta.get('dataset_meta')
        if meta:
            return dict(meta)
        # Fall back to the classes named in the config, then to numbered classes.
        for key in ('test_dataloader', 'val_dataloader'):
            dataset = self.cfg.get(key, {}).get('dataset', {}) if self.cfg.get(key) else {}
            classes = (dataset.get('metainfo') or {}).get('classes') or dataset.get('classes')
            if classes:
                return {'classes': tuple(classes)}
        return {}

    def _build_pipeline(self) -> Compose:
        pipeline_cfg = None
        for key in ('test_dataloader', 'val_dataloader'):
            if self.cfg.get(key) and self.cfg[key].get('dataset'):
                dataset = self.cfg[key].dataset
                while 'pipeline' not in dataset and 'dataset' in dataset:  # wrappers
                    dataset = dataset.dataset
                pipeline_cfg = dataset.get('pipeline')
                if pipeline_cfg:
                    break
        if not pipeline_cfg:
            pipeline_cfg = self.cfg.get('test_pipeline')
        if not pipeline_cfg:
            raise InputError('The config has no test pipeline (test_dataloader.dataset.pipeline '
                             'or test_pipeline); expected one to prepare images as the model '
                             'was evaluated.')
        # The image is read by mmcam (read_image), so drop the loading step, but keep what it
        # would have done to the array (CenterNet's crop needs float32 images).
        self.to_float32 = any('LoadImage' in str(t.get('type', '')) and t.get('to_float32')
                              for t in pipeline_cfg)
        steps = [copy.deepcopy(t) for t in pipeline_cfg
                 if 'LoadImage' not in str(t.get('type', ''))
                 and 'LoadAnnotations' not in str(t.get('type', ''))]
        for step in steps:
            if 'Pack' in str(step.get('type', '')):
                keys = tuple(step.get('meta_keys', ()))
                if keys:  # geometry needs these keys to reach the data sample (in a fixed
                    # order: a set's order changes with the interpreter's hash seed)
                    step['meta_keys'] = tuple(dict.fromkeys(
                        (*keys, 'ori_shape', 'img_shape', 'scale_factor', 'pad_param',
                         'crop_bbox', 'img_crop_bbox')))
        pipeline = Compose(steps)
        for transform in pipeline.transforms:
            # Pack steps left at their defaults (mmpretrain's PackInputs) drop the crop box.
            if isinstance(getattr(transform, 'meta_keys', None), (tuple, list)):
                transform.meta_keys = tuple(dict.fromkeys(
                    (*transform.meta_keys, 'scale_factor', 'pad_param', 'img_crop_bbox')))
            # mmcv's CenterCrop does not record where it cut; keep the box it computed.
            if 'Crop' in type(transform).__name__ and hasattr(transform, '_crop_img'):
                transform._crop_img = _recording_crop(transform._crop_img)
        return pipeline

    @classmethod
    def of(cls, model: Union['LoadedModel', nn.Module, str, Config],
           checkpoint: Optional[str] = None, device: str = 'cpu',
           cfg_options: Optional[dict] = None, allow_unsafe_checkpoint: bool = False,
           scope: Optional[str] = None) -> 'LoadedModel':
        """What every explainer is built from: a LoadedModel as it is, a built model (a
        Runner's: ``scope`` names its default scope), or a config and checkpoint."""
        if isinstance(model, LoadedModel):
            return model
        if isinstance(model, nn.Module):
            if scope is None:
                raise InputError('A built model needs its default scope (mmpretrain, mmdet or '
                                 "mmyolo); pass scope='mmyolo', say.")
            return cls.from_model(model, scope)
        return cls(model, checkpoint, device=device, cfg_options=cfg_options,
                   allow_unsafe_checkpoint=allow_unsafe_checkpoint)

    @classmethod
    def from_model(cls, model: nn.Module, scope: str,
                   dataset_meta: Optional[dict] = None) -> 'LoadedModel':
        """Wrap a model that is already built (by a Runner, say); it has no pipeline of its own,
        so its samples come from :meth:`samples_from_batch`."""
        if scope not in _TASKS:
            raise InputError(f'default_scope {scope!r} is not supported; expected one of '
                             f'{sorted(_TASKS)}.')
        self = cls.__new__(cls)
        self.cfg, self.scope, self.task = None, scope, _TASKS[scope]
        self.model, self.checkpoint_meta, self.pipeline = model, {}, None
        self.dataset_meta = dict(dataset_meta or getattr(model, 'dataset_meta', None) or {})
        self.device = next(model.parameters()).device
        return self

    # -- use -----------------------------------------------------------------------------
    def input_image(self, inputs: torch.Tensor) -> np.ndarray:
        """A (1, C, H, W) network input as a picture: normalisation undone, RGB uint8."""
        pre = self.model.data_preprocessor
        x = inputs[0].detach().float().cpu()
        if getattr(pre, '_enable_normalize', True) and getattr(pre, 'std', None) is not None:
            x = x * pre.std.detach().cpu().view(-1, 1, 1) + pre.mean.detach().cpu().view(-1, 1, 1)
        img = x.permute(1, 2, 0).clamp(0, 255).round().byte().numpy()
        if img.shape[2] == 1:
            img = np.repeat(img, 3, axis=2)
        # mmcam feeds BGR; the data_preprocessor converts to RGB only when told to
        # (mmengine/mmdet: _channel_conversion, mmpretrain: to_rgb).
        if not (getattr(pre, '_channel_conversion', False) or getattr(pre, 'to_rgb', False)):
            img = img[..., ::-1]
        return np.ascontiguousarray(img)

    def samples_from_batch(self, data_batch: dict, indices: Sequence[int],
                           original: bool = False) -> List[Sample]:
        """Samples from a dataloader batch.

        By default a sample is pictured as the network input it became: a Runner's pipeline
        may not record every geometric step (mmpretrain's PackInputs drops the crop box), and
        the network input is aligned with the maps by construction. ``original=True`` re-reads
        the image from ``img_path`` and places it with the recorded geometry, for outputs that
        are in original-image pixels already (a detector's boxes); the pipeline must then
        record its resize and padding (mmyolo's and mmdet's do).
        """
        batch = self.model.data_preprocessor(data_batch, training=False)
        inputs = batch['inputs'].to(self.device)
        samples = []
        for i in indices:
            x = inputs[i:i + 1]
            data_sample = batch['data_samples'][i]
            path = data_sample.metainfo.get('img_path')
            if original:
                if not path:
                    raise InputError('The sample has no img_path in its metainfo, so its '
                                     'original image cannot be drawn; expected a dataset that '
                                     "records it (add 'img_path' to the Pack meta_keys).")
                geometry = InputGeometry.from_meta(data_sample.metainfo, x.shape[-2:])
                image = mmcv.bgr2rgb(read_image(path))
            else:
                geometry, image = InputGeometry.identity(x.shape[-2:]), self.input_image(x)
            samples.append(Sample(x, data_sample, geometry, image, path))
        return samples

    @property
    def classes(self) -> Sequence[str]:
        return tuple(self.dataset_meta.get('classes', ()))

    def prepare(self, images: Sequence[ImageLike]) -> List[Sample]:
        """Run images through the test pipeline and the data_preprocessor as one batch."""
        originals, packed, paths = [], [], []
        for image in images:
            bgr = read_image(image)
            path = image if isinstance(image, str) else None
            results = dict(img=bgr.astype(np.float32) if self.to_float32 else bgr,
                           img_shape=bgr.shape[:2], ori_shape=bgr.shape[:2], img_path=path,
                           img_id=0)
            packed.append(self.pipeline(results))
            originals.append(mmcv.bgr2rgb(bgr))
            paths.append(path)
        batch = self.model.data_preprocessor(pseudo_collate(packed), training=False)
        inputs = batch['inputs'].to(self.device)
        samples = []
        for i, data_sample in enumerate(batch['data_samples']):
            geometry = InputGeometry.from_meta(data_sample.metainfo, inputs.shape[-2:])
            samples.append(Sample(inputs[i:i + 1], data_sample, geometry, originals[i], paths[i]))
        return samples


IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp', '.pgm', '.ppm')


def expand_images(spec: Union[str, Sequence[str]]) -> List[str]:
    """A file, a folder (its images, recursively, sorted) or a glob pattern -> image paths.

    Links to folders are not followed inside a folder (a link to the folder itself would be
    walked again and again); links to files are.
    """
    specs = [spec] if isinstance(spec, str) else list(spec)
    paths: List[str] = []
    for s in specs:
        if os.path.isdir(s):
            found = sorted(os.path.join(folder, name) for folder, _, names in os.walk(s)
                           for name in names if os.path.isfile(os.path.join(folder, name)))
            paths += [p for p in found if p.lower().endswith(IMAGE_EXTENSIONS)] or found
        elif os.path.isfile(s):
            paths.append(s)
        elif glob.has_magic(s):
            paths += sorted(p for p in glob.glob(s, recursive=True) if os.path.isfile(p))
        else:
            raise InputError(f'Image {s!r} does not exist; expected an image file, a folder of '
                             'images or a glob pattern such as "images/*.jpg".')
    if not paths:
        raise InputError(f'No image found in {spec!r}; expected image files '
                         f'({", ".join(IMAGE_EXTENSIONS)}).')
    return paths
