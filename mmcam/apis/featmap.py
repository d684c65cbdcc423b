"""Feature maps of named layers: the explainer shared by ``demo/featmap_vis_demo.py``,
:class:`mmcam.engine.hooks.FeatMapVisualizationHook` and Python users.

Example::

    from mmcam.apis import FeatMapInferencer
    featmaps = FeatMapInferencer('configs/demo/det_yolov5.py', 'demo/checkpoints/det_yolov5.pth',
                                 target_layers=['neck'], channel_reduction='squeeze_mean')
    result = featmaps.explain('demo/digits_det.png')   # result.levels: one map per level
    picture = featmaps.draw(result)                     # RGB uint8, on the original image
"""
from __future__ import annotations

from typing import Any, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from mmcam.apis.model_loader import LoadedModel
from mmcam.cams.layers import backbone_extra_tokens
from mmcam.cams.reshape import TokenReshape, patch_grid_probe
from mmcam.geometry import InputGeometry
from mmcam.models.capture import capture_outputs
from mmcam.models.state import model_state_restored
from mmcam.structures import FeatMapResult, ImageLike, Sample
from mmcam.utils.errors import InputError, OptionError
from mmcam.utils.modules import find_module
from mmcam.visualization.featmap import check_arrangement, draw_levels, split_levels

REDUCTIONS = ('squeeze_mean', 'select_max', None)


def featmap_levels(loaded: LoadedModel, sample: Sample,
                   layers: Sequence[str]) -> Tuple[List[Tuple[str, torch.Tensor]], Any]:
    """Run ``sample`` through the model's ``predict`` and capture the outputs of ``layers``.

    Returns ``(levels, predictions)``: one ``(title, (C, h, w) tensor)`` per feature map in the
    layers' outputs (pyramid outputs give one per level; transformer tokens are laid out on the
    patch grid the backbone reports for this input) and the model's predictions.

    Raises:
        OptionError: for an unknown layer, one that did not run, or one without a feature map
            (the same for every image).
    """
    model = loaded.model
    modules = {name: find_module(model, name) for name in layers}
    backbone = getattr(model, 'backbone', model)
    grids = {name: TokenReshape(name, backbone_extra=backbone_extra_tokens(backbone))
             for name in layers}
    with capture_outputs(modules) as outputs, torch.no_grad(), \
            patch_grid_probe(backbone, list(grids.values()), sample.inputs.shape[-2:]):
        predictions = model.predict(sample.inputs, [sample.data_sample])
    levels = []
    for name in layers:
        if name not in outputs:
            raise OptionError(f'Layer {name!r} did not run during the forward pass; choose a '
                              'layer on the prediction path (see --preview-model).')
        try:
            levels += split_levels(name, outputs[name], tokens_to_grid=grids[name])
        except ValueError as err:
            raise OptionError(str(err)) from None
    return levels, predictions


class FeatMapInferencer:
    """Feature maps of chosen layers, drawn aligned with the original image.

    Args:
        model: a config file (with ``checkpoint``), a :class:`LoadedModel`, or a built model
            (with ``scope``).
        target_layers: module names; a module returning several pyramid levels (or tokens)
            gives one map per level.
        channel_reduction: ``'squeeze_mean'``, ``'select_max'`` or ``None`` (the ``topk`` most
            active channels on an ``arrangement`` grid).
        score_thr: detectors only: draw the detections scoring at least this (None: none).
        canvas: ``'original'`` (pipeline resize/padding undone) or ``'input'`` (the network
            input as the model saw it).
        alpha: opacity of the maps over the image.
    """

    def __init__(self, model: Union[str, LoadedModel, torch.nn.Module],
                 checkpoint: Optional[str] = None,
                 target_layers: Sequence[str] = ('backbone', ),
                 channel_reduction: Optional[str] = 'select_max', topk: int = 4,
                 arrangement: Tuple[int, int] = (2, 2), score_thr: Optional[float] = None,
                 canvas: str = 'original', alpha: float = 0.5, device: str = 'cpu',
                 cfg_options: Optional[dict] = None, allow_unsafe_checkpoint: bool = False,
                 scope: Optional[str] = None) -> None:
        if channel_reduction not in REDUCTIONS:
            raise InputError(f'channel_reduction={channel_reduction!r} is not supported; '
                             f'expected one of {REDUCTIONS}.')
        if channel_reduction is None:
            try:
                check_arrangement(topk, arrangement)
            except ValueError as err:
                raise InputError(str(err)) from None
        if canvas not in ('original', 'input'):
            raise InputError(f"canvas={canvas!r}: expected 'original' or 'input'.")
        if not 0.0 <= alpha <= 1.0:
            raise InputError(f'--alpha {alpha} is out of range; expected 0..1.')
        self.loaded = LoadedModel.of(model, checkpoint, device, cfg_options,
                                     allow_unsafe_checkpoint, scope)
        if score_thr is not None and self.loaded.task != 'detection':
            raise InputError('--score-thr draws detections, but the config builds a '
                             'classifier; leave --score-thr out.')
        self.target_layers = [target_layers] if isinstance(target_layers, str) else list(
            target_layers)
        for name in self.target_layers:  # an unknown layer fails before any image
            find_module(self.loaded.model, name)
        self.channel_reduction, self.topk = channel_reduction, topk
        self.arrangement, self.score_thr = tuple(arrangement), score_thr
        self.canvas, self.alpha = canvas, alpha

    def explain(self, image: Union[ImageLike, Sample]) -> FeatMapResult:
        """Run one image (or a prepared sample) and capture the target layers' maps."""
        sample = image if isinstance(image, Sample) else self.loaded.prepare([image])[0]
        with model_state_restored(self.loaded.model):  # eval mode, given back as it was
            levels, predictions = featmap_levels(self.loaded, sample, self.target_layers)
        boxes = labels = None
        if self.score_thr is not None:
            pred = predictions[0].pred_instances
            keep = pred.scores >= self.score_thr
            boxes = pred.bboxes[keep].detach().cpu().numpy()
            classes = self.loaded.classes
            labels = [f'{classes[c] if c < len(classes) else c} {s:.2f}' for c, s in
                      zip(pred.labels[keep].tolist(), pred.scores[keep].tolist())]
        return FeatMapResult(sample, levels, boxes, labels)

    def draw(self, result: FeatMapResult) -> np.ndarray:
        """The maps over the image (RGB uint8): one panel per feature map."""
        sample, boxes = result.sample, result.boxes
        if self.canvas == 'input':
            canvas = self.loaded.input_image(sample.inputs)
            geometry = InputGeometry.identity(canvas.shape[:2])
            if boxes is not None:  # the maps cover the whole input: bring the boxes there too
                boxes = sample.geometry.to_input_points(boxes.reshape(-1, 2)).reshape(-1, 4)
        else:
            canvas, geometry = sample.image, sample.geometry
        try:
            return draw_levels(result.levels, canvas, self.channel_reduction, self.topk,
                               self.arrangement, None, self.alpha, geometry=geometry,
                               boxes=boxes, box_labels=result.box_labels)
        except ValueError as err:  # e.g. topk -1 on a 128-channel map: every image alike
            raise OptionError(str(err)) from None
