"""Box-level activation maps (box AM): one map per kept detection of a detector.

Flow, one image at a time::

    LoadedModel.prepare -> adapter.detect (the detector's own boxes and where each came from)
      -> adapter.box_scores (each box's own score at its origin, differentiable)
      -> a box-AM method (mmcam.cams.box_methods), one target per box -> maps in input pixels
         (gradient methods: one forward pass, one backward pass per box and explained output)
      -> InputGeometry.to_original -> maps in original-image pixels
      -> optional normalisation inside each box -> combined map (max or sum over boxes)

A model is loaded once by :class:`BoxAMInferencer` and reused for every image.
"""
from __future__ import annotations

from contextlib import ExitStack, nullcontext
from typing import List, Optional, Sequence, Union

import numpy as np
import torch
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from torch import nn

from mmcam.apis.model_loader import InputError, LoadedModel
from mmcam.cams.ablation import BoxAblationCAM, ZeroAblationLayer
from mmcam.cams.box_maps import combine_maps, finite_maps, normalise_in_boxes
from mmcam.cams.box_methods import BOX_METHODS, BoxMethod, check_explain, get_box_method
from mmcam.cams.per_target import per_target_cams
from mmcam.cams.reshape import PyramidReshape
from mmcam.models.capture import capture_outputs
from mmcam.models.detectors import build_adapter
from mmcam.models.state import model_state_restored
from mmcam.structures import BoxAMResult, Detections, ImageLike, Sample
from mmcam.utils.errors import OptionError
from mmcam.utils.modules import find_module
from mmcam.visualization.boxam import draw_note
from mmcam.visualization.cam_visualizer import CAMVisualizer

#: The three output levels of mmyolo's YOLO necks (strides 8, 16, 32): an nn.Identity in
#: YOLOv5/YOLOv6 (the PAFPN output itself), a ConvModule in YOLOX/RTMDet. Without
#: --target-layers, every family's adapter picks all the levels its head reads, because a box's
#: score depends only on the level its prior belongs to: with one level, boxes predicted from
#: the others get an empty map. grad-cam averages the per-level maps (each scaled to [0, 1])
#: and rescales the result.
ALL_LEVELS = ('neck.out_layers[0]', 'neck.out_layers[1]', 'neck.out_layers[2]')
#: Largest masked-input tensor ScoreCAM may build (channels x 3 x H x W floats).
SCORECAM_MAX_BYTES = 4 * 1024 ** 3


def check_score_thr(score_thr: float) -> None:
    """Refuse a detection threshold that is not a confidence."""
    if not 0.0 <= score_thr <= 1.0:
        raise InputError(f'--score-thr {score_thr:g} is outside [0, 1]; expected a detection '
                         'confidence such as 0.3.')


class BoxAMInferencer:
    """Load a detector once; compute box AMs for any number of images.

    Args:
        model: a detector config file (with ``checkpoint``), a :class:`LoadedModel`, or a
            built detector (with ``scope``, e.g. a Runner's).
        method: a box-AM method name (:mod:`mmcam.cams.box_methods`): ``gradcam`` (= ``odam``,
            per-pixel gradients, as mmyolo), ``gradcam++``, ``gradcam-avg``, ``gradcam++-avg``,
            ``xgradcam``, ``layercam``, ``eigencam``, ``ablationcam``, ``scorecam``.
        target_layers: layer names; the maps of several (e.g. :data:`ALL_LEVELS`) are
            combined as grad-cam combines layers. Default: every feature level the head
            reads (the adapter's ``default_target_layers()``, e.g. the FPN outputs).
        score_thr: keep detections with at least this confidence.
        topk: explain at most this many boxes (highest scores first); -1 for all.
        norm_in_bbox: normalise each box's map inside its box, zero outside.
        combine: ``max`` or ``sum`` of the per-box maps for the picture-wide map.
        batch_size: ablated/masked copies per forward pass (AblationCAM, ScoreCAM).
        ratio_channels_to_ablate: fraction of the channels AblationCAM ablates (0 < r <= 1).
        max_shape: (h, w) cap of the common size when a target layer outputs several maps.
        box_batch: ScoreCAM: boxes explained per call (the image is repeated).
        explain: what a gradient method explains: ``class`` (the box's class score),
            ``box`` (its four regression outputs at its prior, one map each, combined by
            their maximum) or ``both`` (the maximum of the class and box maps).
        checkpoint, device, cfg_options, allow_unsafe_checkpoint, scope: how ``model`` is
            loaded (see :meth:`LoadedModel.of`).
    """

    #: AblationCAM re-runs only the layers after the target layers, on the backbone and neck
    #: work of one pass (the adapter's :meth:`~DetectorAdapter.replay`); the maps are the same.
    replay_for_ablation = True

    def __init__(self, model: Union[str, LoadedModel, nn.Module], method: str = 'gradcam',
                 target_layers: Optional[Sequence[str]] = None, score_thr: float = 0.3,
                 topk: int = -1, norm_in_bbox: bool = False, combine: str = 'max',
                 batch_size: int = 8, ratio_channels_to_ablate: float = 1.0,
                 max_shape: Optional[Sequence[int]] = None, box_batch: int = 4,
                 explain: str = 'class', checkpoint: Optional[str] = None,
                 device: str = 'cpu', cfg_options: Optional[dict] = None,
                 allow_unsafe_checkpoint: bool = False, scope: Optional[str] = None) -> None:
        model = LoadedModel.of(model, checkpoint, device, cfg_options, allow_unsafe_checkpoint,
                               scope)
        self.loaded = model
        self.adapter = build_adapter(model.model)
        self.box_method: BoxMethod = get_box_method(method)
        self.method = self.box_method.name
        check_explain(self.box_method, explain)
        self.explain_what = explain
        if target_layers is None:
            target_layers = self.adapter.default_target_layers()
        if not target_layers:
            raise InputError('No --target-layers given; expected at least one layer name, e.g. '
                             f'{self.adapter.default_target_layers()[0]}.')
        self.layer_names = list(target_layers)
        self.layers = [find_module(model.model, name) for name in self.layer_names]
        check_score_thr(score_thr)
        if not 0.0 < ratio_channels_to_ablate <= 1.0:
            raise InputError(f'--ratio-channels-to-ablate {ratio_channels_to_ablate} is '
                             'outside (0, 1]; expected a fraction such as 0.5.')
        if batch_size < 1 or box_batch < 1:
            raise InputError(f'--batch-size {batch_size} is below 1; expected a positive '
                             'integer such as 8.')
        combine_maps(np.zeros((0, 1, 1), np.float32), combine)  # validates the mode
        self.score_thr, self.topk = score_thr, topk
        self.norm_in_bbox, self.combine = norm_in_bbox, combine
        self.batch_size, self.ratio = batch_size, ratio_channels_to_ablate
        self.reshape = PyramidReshape(max_shape)
        self.box_batch = box_batch
        self.visualizer = CAMVisualizer(name=f'mmcam_boxam_{id(self)}')

    @property
    def classes(self) -> Sequence[str]:
        return self.loaded.classes

    def __call__(self, image: Union[ImageLike, Sample]) -> BoxAMResult:
        """The same as :meth:`explain`."""
        return self.explain(image)

    def explain(self, image: Union[ImageLike, Sample]) -> BoxAMResult:
        """Detect, then compute one map per kept box and the combined map, for an image or a
        sample that is already prepared (the hooks make them)."""
        sample = image if isinstance(image, Sample) else self.loaded.prepare([image])[0]
        with model_state_restored(self.loaded.model):  # eval mode, given back as it was
            return self._explain(sample)

    def _explain(self, sample: Sample) -> BoxAMResult:
        named = dict(zip(self.layer_names, self.layers))
        gradients = self.box_method.uses_gradients
        with ExitStack() as stack:
            # Gradient methods keep the layers' outputs with their graph, and the scores
            # reuse the detection's backbone and neck pass: one forward pass per image.
            outputs = stack.enter_context(capture_outputs(named, detach=not gradients))
            if gradients:
                stack.enter_context(self.adapter.features_once(sample.inputs))
            dets = self.adapter.detect(sample, self.score_thr, self.topk)
            self._check_layers(outputs, sample)
            seen = sample.geometry.seen_mask()
            if len(dets) == 0:
                h, w = sample.image.shape[:2]
                return BoxAMResult(sample, dets, np.zeros((0, h, w), np.float32),
                                   np.zeros((h, w), np.float32), seen)
            input_maps = self.input_maps(sample, dets, outputs)
        input_maps = finite_maps(input_maps, f'The {self.method} box map')
        # One array filled in place: on a large photo each map is hundreds of megabytes.
        box_maps = np.empty((len(input_maps), ) + seen.shape, np.float32)
        for i, input_map in enumerate(input_maps):
            box_maps[i] = sample.geometry.to_original(input_map)
        box_maps *= seen
        np.clip(box_maps, 0.0, 1.0, out=box_maps)
        if self.norm_in_bbox:
            box_maps = normalise_in_boxes(box_maps, dets.bboxes)
        return BoxAMResult(sample, dets, box_maps, combine_maps(box_maps, self.combine), seen)

    def input_maps(self, sample: Sample, dets: Detections, outputs: Optional[dict] = None
                   ) -> np.ndarray:
        """(N, H_in, W_in) maps in network-input pixels, one per detection. ``outputs``: the
        target layers' outputs in the detection's pass, for the gradient methods (without
        them the scores run their own forward pass)."""
        method = self.box_method
        if method.uses_gradients:
            return self._gradient_maps(sample, dets, outputs or {})
        scorer = self.adapter.box_scores(dets, method.score or 'confidence')
        if method.cam is BoxAblationCAM:
            # A fresh layer per run: grad-cam's default instance is shared by every AblationCAM.
            cam = BoxAblationCAM(scorer, self.layers, reshape_transform=self.reshape,
                                 ablation_layer=ZeroAblationLayer(), batch_size=self.batch_size,
                                 ratio_channels_to_ablate=self.ratio)
            # All boxes in one call: it ablates each channel once and reads every box's score.
            box_batch = len(dets)
            # It re-runs the detector on this one image many times: only what comes after
            # the target layers needs to run again.
            replay = self.adapter.replay(sample.inputs, self.layers) \
                if self.replay_for_ablation else nullcontext()
        else:
            cam = method.cam(scorer, self.layers, reshape_transform=self.reshape)
            cam.batch_size = self.batch_size  # ScoreCAM reads it as an attribute
            box_batch, replay = self.box_batch, nullcontext()
        maps: List[np.ndarray] = []
        with cam, replay:  # removes grad-cam's hooks, also on errors
            if method.score is None:  # EigenCAM: the same map for every box
                one = cam(sample.inputs, targets=[ClassifierOutputTarget(0)])[0]
                return np.repeat(one[None], len(dets), axis=0)
            for start in range(0, len(dets), box_batch):
                ids = list(range(start, min(start + box_batch, len(dets))))
                inputs = sample.inputs.expand(len(ids), -1, -1, -1).contiguous()
                maps.extend(cam(inputs, targets=[ClassifierOutputTarget(i) for i in ids]))
        return np.stack(maps).astype(np.float32)

    def _gradient_maps(self, sample: Sample, dets: Detections, outputs: dict) -> np.ndarray:
        """Gradient methods: the detection's forward pass (``outputs``: the target layers'
        outputs in it), then one backward pass per explained scalar."""
        n = len(dets)
        explain = self.explain_what
        # Columns of the scorer's output: the N class logits, then each box's 4 regressions.
        columns = [([i] if explain != 'box' else []) +
                   ([n + 4 * i + k for k in range(4)] if explain != 'class' else [])
                   for i in range(n)]
        scorer = self.adapter.box_scores(dets, 'logit', regression=explain != 'class')
        scorer.join_levels = False  # per_target_cams takes a missing gradient as zeros
        cam = self.box_method.cam(scorer, self.layers, reshape_transform=self.reshape)
        with cam:
            return per_target_cams(cam, sample.inputs, [
                [lambda out, c=c: out[0, c] for c in cols] for cols in columns],
                earlier=[outputs.get(name) for name in self.layer_names])

    def draw(self, result: BoxAMResult, per_box: bool = False, alpha: float = 0.5,
             numbered: bool = False) -> np.ndarray:
        """The picture of a result (RGB uint8): the combined map with every box labelled
        ``class score``, or with ``per_box`` one panel per box (``numbered``: titled ``#i`` to
        link a panel to its saved map); a note on the image when nothing was detected."""
        dets = result.detections
        if len(dets) == 0:
            return draw_note(self.visualizer, result.image,
                             f'no detection with score >= {self.score_thr:g}')
        titles = box_titles(dets, self.classes)
        if not per_box:
            return self.visualizer.draw_boxam(result.image, result.combined, dets.bboxes,
                                              dets.labels, titles, result.seen_mask,
                                              alpha=alpha)
        if numbered:
            titles = [f'#{i} {title}' for i, title in enumerate(titles)]
        return self.visualizer.draw_boxam(result.image, None, dets.bboxes, dets.labels, titles,
                                          result.seen_mask, box_maps=result.box_maps,
                                          alpha=alpha)

    def _check_layers(self, outputs: dict, sample: Sample) -> None:
        """Refuse layers a method cannot use, saying why, before any long computation."""
        for name in self.layer_names:
            if name not in outputs:
                raise OptionError(
                    f'Layer {name!r} did not run when the detector processed the image, so it '
                    'has no activations to explain. Expected a layer of the backbone, neck or '
                    'head; see --preview-model.')
            out = outputs[name]
            several = not torch.is_tensor(out)
            if several:
                maps = [m for m in out if torch.is_tensor(m)] if isinstance(
                    out, (tuple, list)) else []
                if not maps or any(m.dim() != 4 for m in maps):
                    raise OptionError(
                        f'Layer {name!r} outputs {type(out).__name__}, not feature maps; '
                        'expected (B, C, H, W) tensors. Pick another --target-layers.')
                if not self.box_method.several_maps:
                    why = ('replaces the layer output channel by channel'
                           if self.box_method.cam is BoxAblationCAM else
                           'needs the gradient of one output tensor')
                    raise OptionError(
                        f'--method {self.method} cannot run on layer {name!r}: it outputs '
                        f'{len(maps)} feature maps, and {self.method} {why}. Name the levels '
                        f'one by one (--target-layers '
                        f'{" ".join(self.adapter.default_target_layers())}) or use one of '
                        f'{", ".join(m.name for m in BOX_METHODS.values() if m.several_maps)} '
                        'for this layer.')
                channels = sum(m.shape[1] for m in maps)
            else:
                if out.dim() != 4:
                    raise OptionError(
                        f'Layer {name!r} outputs a tensor of shape {tuple(out.shape)}; box AM '
                        'needs (B, C, H, W) feature maps. Pick a convolutional layer, e.g. '
                        f'{self.adapter.default_target_layers()[0]}.')
                channels = out.shape[1]
            if self.box_method.masks_input:
                need = channels * sample.inputs[0].numel() * 4
                if need > SCORECAM_MAX_BYTES:
                    raise OptionError(
                        f'--method {self.method} on layer {name!r} would hold {channels} masked '
                        f'copies of the input ({need / 1024 ** 3:.1f} GiB). Expected at most '
                        f'{SCORECAM_MAX_BYTES / 1024 ** 3:.0f} GiB: pick a layer with fewer '
                        'channels, or use ablationcam.')


def box_titles(dets: Detections, classes: Sequence[str]) -> List[str]:
    """``'<class> <score>'`` for each detection."""
    return [f'{name} {score:.2f}' for name, score in zip(dets.names(classes), dets.scores)]

