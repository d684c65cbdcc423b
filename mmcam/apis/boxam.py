"""Box-level activation maps (box AM): one map per kept detection of an mmyolo detector.

Flow, one image at a time::

    LoadedModel.prepare -> DetectorAdapter.detect (the detector's own boxes and their priors)
      -> BoxScores (each box's raw head output at its prior, differentiable)
      -> a grad-cam method, one target per box -> maps in network-input pixels
      -> InputGeometry.to_original -> maps in original-image pixels
      -> optional normalisation inside each box -> combined map (max or sum over boxes)

A model is loaded once by :class:`BoxAMInferencer` and reused for every image.
"""
from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from pytorch_grad_cam import AblationCAM
from pytorch_grad_cam.ablation_layer import AblationLayer
from pytorch_grad_cam.utils.image import scale_cam_image
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

from mmcam.apis.model_loader import ImageLike, InputError, LoadedModel, Sample, find_module
from mmcam.cams.methods import build_cam, get_method
from mmcam.models.capture import capture_outputs
from mmcam.models.detector import DetectorAdapter, Detections

#: The neck's three output levels (strides 8, 16, 32), which all four families have: an
#: nn.Identity in YOLOv5/YOLOv6 (the PAFPN output itself), a ConvModule in YOLOX/RTMDet.
#: All three, because a box's score depends only on the level its prior belongs to: with
#: one level, boxes predicted from the others get an empty map. grad-cam combines the
#: per-level maps by their maximum.
ALL_LEVELS = ('neck.out_layers[0]', 'neck.out_layers[1]', 'neck.out_layers[2]')
DEFAULT_TARGET_LAYERS = ALL_LEVELS

#: Methods box AM supports (grad-cam class names) and the score each one explains.
#: Gradient methods and ScoreCAM (a softmax over channel scores) use the log-odds, which does
#: not saturate for confident boxes; AblationCAM divides by the score, so it needs the
#: positive confidence. EigenCAM uses no score at all: its map is the same for every box.
METHOD_SCORES: Dict[str, Optional[str]] = {
    'GradCAM': 'logit', 'GradCAMPlusPlus': 'logit', 'XGradCAM': 'logit', 'LayerCAM': 'logit',
    'EigenCAM': None, 'AblationCAM': 'confidence', 'ScoreCAM': 'logit'}
GRADIENT_FREE = {'EigenCAM', 'AblationCAM', 'ScoreCAM'}
#: Largest masked-input tensor ScoreCAM may build (channels x 3 x H x W floats).
SCORECAM_MAX_BYTES = 4 * 1024 ** 3
COMBINE_MODES = ('max', 'sum')


class LayerError(InputError):
    """A target layer that cannot be used (the same for every image, so a run stops)."""


class ZeroAblationLayer(AblationLayer):
    """grad-cam's AblationLayer, ablating a channel by setting it to zero (as in the paper).

    grad-cam's own layer writes ``min(output) - 1e7`` and re-reads the minimum after every
    channel, so the value depends on the position in the batch (``--batch-size`` changed the
    map) and the huge values saturate every detection score after SiLU activations.
    """

    def __call__(self, x):
        output = self.activations
        for i in range(output.size(0)):
            output[i, self.indices[i]] = 0
        return output

    def activations_to_be_ablated(self, activations, ratio_channels_to_ablate: float = 1.0):
        """Ablate a fraction ``r`` of the channels, each once.

        grad-cam picks the ``r`` most and the ``r`` least object-like channels (by its SVD
        projection), which is 2r of them and repeats channels when r > 0.5; asking it for
        r/2 of each gives r of them, all different.
        """
        if ratio_channels_to_ablate >= 1.0:
            return super().activations_to_be_ablated(activations, 1.0)
        return super().activations_to_be_ablated(activations, ratio_channels_to_ablate / 2)


class BoxAblationCAM(AblationCAM):
    """grad-cam's AblationCAM, with score changes below float32 noise counted as none.

    A level that a box's score does not depend on gives weights of pure rounding noise
    (a batch of ablated copies is computed with other kernels than the single original), and
    grad-cam would rescale that noise to a full-range map; so would the maximum over levels.
    """

    #: Relative score changes below this are rounding noise, not evidence.
    noise_floor = 1e-4
    #: Test first whether zeroing the whole layer changes any target's score; if not (a
    #: pyramid level other than the box's), skip its channel-by-channel loop.
    skip_unused_layers = True

    def get_cam_weights(self, input_tensor, target_layer, targets, activations, grads
                        ) -> np.ndarray:
        if self.skip_unused_layers and not self._layer_matters(input_tensor, target_layer,
                                                               targets):
            return np.zeros(activations.shape[:2], np.float32)
        weights = super().get_cam_weights(input_tensor, target_layer, targets, activations,
                                          grads)
        return np.where(np.abs(weights) < self.noise_floor, 0.0, weights).astype(np.float32)

    def _layer_matters(self, input_tensor, target_layer, targets) -> bool:
        handle = target_layer.register_forward_hook(lambda m, i, out: torch.zeros_like(out))
        try:
            with torch.no_grad():
                ablated = [float(t(o)) for t, o in zip(targets, self.model(input_tensor))]
        finally:
            handle.remove()
        with torch.no_grad():
            original = [float(t(o)) for t, o in zip(targets, self.model(input_tensor))]
        return any(abs(a - o) > self.noise_floor * max(abs(o), 1e-12)
                   for a, o in zip(ablated, original))


class PyramidReshape:
    """grad-cam ``reshape_transform``: several maps from one layer -> one (B, C, h, w) grid.

    A layer like ``neck`` returns one map per pyramid level; they are resized to the largest
    level's size, capped at ``max_shape`` (h, w), and stacked along channels. A single map
    passes through unchanged.
    """

    def __init__(self, max_shape: Optional[Sequence[int]] = None) -> None:
        self.max_shape = tuple(max_shape) if max_shape else None

    def __call__(self, output):
        if torch.is_tensor(output):
            return output
        maps = [m for m in output if torch.is_tensor(m) and m.dim() == 4]
        h = max(m.shape[-2] for m in maps)
        w = max(m.shape[-1] for m in maps)
        if self.max_shape is not None:
            h, w = (min(h, self.max_shape[0]) if self.max_shape[0] > 0 else h,
                    min(w, self.max_shape[-1]) if self.max_shape[-1] > 0 else w)
        return torch.cat([F.interpolate(m, (h, w), mode='bilinear', align_corners=False)
                          for m in maps], dim=1)


@dataclass
class BoxAMResult:
    """Box AM of one image, all maps float32 in [0, 1] on original-image pixels."""
    sample: Sample
    detections: Detections
    box_maps: np.ndarray      # (N, H, W), one map per kept box, in score order
    combined: np.ndarray      # (H, W); zeros when nothing was detected
    seen_mask: np.ndarray     # (H, W) bool, pixels the network saw (not cropped away)

    @property
    def image(self) -> np.ndarray:
        return self.sample.image


def normalise_in_boxes(box_maps: np.ndarray, bboxes: np.ndarray) -> np.ndarray:
    """Rescale each box's map to [0, 1] inside its own box and zero it outside (as mmyolo)."""
    out = np.zeros_like(box_maps, dtype=np.float32)
    h, w = box_maps.shape[-2:]
    for i, (x1, y1, x2, y2) in enumerate(np.asarray(bboxes)):
        x1, y1 = max(int(np.floor(x1)), 0), max(int(np.floor(y1)), 0)
        x2, y2 = min(int(np.ceil(x2)), w), min(int(np.ceil(y2)), h)
        if x2 > x1 and y2 > y1:
            out[i, y1:y2, x1:x2] = scale_cam_image([box_maps[i, y1:y2, x1:x2]])[0]
    return out


def combine_maps(box_maps: np.ndarray, mode: str = 'max') -> np.ndarray:
    """One picture-wide map from per-box maps: their maximum, or their sum rescaled to [0, 1]."""
    if mode not in COMBINE_MODES:
        raise InputError(f'--combine {mode!r} is unknown; expected one of {COMBINE_MODES}.')
    if len(box_maps) == 0:
        return np.zeros(box_maps.shape[-2:], np.float32)
    if mode == 'max':
        return box_maps.max(axis=0).astype(np.float32)
    total = box_maps.sum(axis=0)
    return (total / max(float(total.max()), 1e-12)).astype(np.float32)


def check_score_thr(score_thr: float) -> None:
    """Refuse a detection threshold that is not a confidence."""
    if not 0.0 <= score_thr <= 1.0:
        raise InputError(f'--score-thr {score_thr:g} is outside [0, 1]; expected a detection '
                         'confidence such as 0.3.')


class BoxAMInferencer:
    """Load a detector once; compute box AMs for any number of images.

    Args:
        model: a loaded mmyolo detector (see :class:`LoadedModel`).
        method: a grad-cam method name, case-insensitive (``gradcam``, ``gradcam++``,
            ``xgradcam``, ``layercam``, ``eigencam``, ``ablationcam``, ``scorecam``).
        target_layers: layer names; several (e.g. :data:`ALL_LEVELS`) are combined by
            grad-cam (maximum of the per-layer maps).
        score_thr: keep detections with at least this confidence.
        topk: explain at most this many boxes (highest scores first); -1 for all.
        norm_in_bbox: normalise each box's map inside its box, zero outside.
        combine: ``max`` or ``sum`` of the per-box maps for the picture-wide map.
        batch_size: ablated/masked copies per forward pass (AblationCAM, ScoreCAM).
        ratio_channels_to_ablate: fraction of the channels AblationCAM ablates (0 < r <= 1).
        max_shape: (h, w) cap of the common size when a target layer outputs several maps.
        box_batch: boxes explained per forward/backward pass (the image is repeated).
    """

    #: AblationCAM re-runs only the layers after the target layers, on the backbone and neck
    #: work of one pass (:meth:`DetectorAdapter.replayed_neck`); the maps are the same.
    replay_for_ablation = True

    def __init__(self, model: LoadedModel, method: str = 'gradcam',
                 target_layers: Sequence[str] = DEFAULT_TARGET_LAYERS, score_thr: float = 0.3,
                 topk: int = -1, norm_in_bbox: bool = False, combine: str = 'max',
                 batch_size: int = 8, ratio_channels_to_ablate: float = 1.0,
                 max_shape: Optional[Sequence[int]] = None, box_batch: int = 4) -> None:
        self.loaded = model
        self.adapter = DetectorAdapter(model.model)
        self.method = get_method(method).__name__
        if self.method not in METHOD_SCORES:
            raise InputError(f'--method {method!r} is not supported for box AM; expected one of '
                             'gradcam, gradcam++, xgradcam, layercam, eigencam, ablationcam, '
                             'scorecam.')
        if not target_layers:
            raise InputError('No --target-layers given; expected at least one layer name, e.g. '
                             f'{DEFAULT_TARGET_LAYERS[0]}.')
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

    @property
    def classes(self) -> Sequence[str]:
        return self.loaded.classes

    def __call__(self, image: ImageLike) -> BoxAMResult:
        """Detect, then compute one map per kept box and the combined map."""
        return self.explain(self.loaded.prepare([image])[0])

    def explain(self, sample: Sample) -> BoxAMResult:
        """:meth:`__call__` for a sample that is already prepared (the hooks make them)."""
        named = dict(zip(self.layer_names, self.layers))
        with capture_outputs(named) as outputs:
            dets = self.adapter.detect(sample, self.score_thr, self.topk)
        self._check_layers(outputs, sample)
        seen = sample.geometry.seen_mask()
        if len(dets) == 0:
            h, w = sample.image.shape[:2]
            return BoxAMResult(sample, dets, np.zeros((0, h, w), np.float32),
                               np.zeros((h, w), np.float32), seen)
        input_maps = self.input_maps(sample, dets)
        box_maps = np.stack([sample.geometry.to_original(m) for m in input_maps]) * seen
        box_maps = np.clip(box_maps, 0.0, 1.0).astype(np.float32)
        if self.norm_in_bbox:
            box_maps = normalise_in_boxes(box_maps, dets.bboxes)
        return BoxAMResult(sample, dets, box_maps, combine_maps(box_maps, self.combine), seen)

    def input_maps(self, sample: Sample, dets: Detections) -> np.ndarray:
        """(N, H_in, W_in) maps in network-input pixels, one per detection."""
        kind = METHOD_SCORES[self.method] or 'confidence'
        scorer = self.adapter.box_scores(dets, kind)
        if self.method == 'AblationCAM':
            # A fresh layer per run: grad-cam's default instance is shared by every AblationCAM.
            cam = BoxAblationCAM(scorer, self.layers, reshape_transform=self.reshape,
                                 ablation_layer=ZeroAblationLayer(), batch_size=self.batch_size,
                                 ratio_channels_to_ablate=self.ratio)
        else:
            cam = build_cam(self.method, scorer, self.layers, reshape_transform=self.reshape,
                            batch_size=self.batch_size)
        # AblationCAM loops over the boxes of a batch one by one anyway; one box per call
        # lets it skip the levels that box does not depend on.
        box_batch = 1 if self.method == 'AblationCAM' else self.box_batch
        maps: List[np.ndarray] = []
        # AblationCAM re-runs the detector on this one image many times: only what comes
        # after the target layers needs to run again.
        replay = self.adapter.replayed_neck(sample.inputs, self.layers) \
            if self.method == 'AblationCAM' and self.replay_for_ablation else nullcontext()
        with cam, replay:  # removes grad-cam's hooks, also on errors
            if METHOD_SCORES[self.method] is None:  # EigenCAM: the same map for every box
                one = cam(sample.inputs, targets=[ClassifierOutputTarget(0)])[0]
                return np.repeat(one[None], len(dets), axis=0)
            for start in range(0, len(dets), box_batch):
                ids = list(range(start, min(start + box_batch, len(dets))))
                inputs = sample.inputs.expand(len(ids), -1, -1, -1).contiguous()
                maps.extend(cam(inputs, targets=[ClassifierOutputTarget(i) for i in ids]))
        return np.stack(maps).astype(np.float32)

    def _check_layers(self, outputs: dict, sample: Sample) -> None:
        """Refuse layers a method cannot use, saying why, before any long computation."""
        for name in self.layer_names:
            if name not in outputs:
                raise LayerError(
                    f'Layer {name!r} did not run when the detector processed the image, so it '
                    'has no activations to explain. Expected a layer of the backbone, neck or '
                    'head; see --preview-model.')
            out = outputs[name]
            several = not torch.is_tensor(out)
            if several:
                maps = [m for m in out if torch.is_tensor(m)] if isinstance(
                    out, (tuple, list)) else []
                if not maps or any(m.dim() != 4 for m in maps):
                    raise LayerError(
                        f'Layer {name!r} outputs {type(out).__name__}, not feature maps; '
                        'expected (B, C, H, W) tensors. Pick another --target-layers.')
                if self.method not in ('EigenCAM', 'ScoreCAM'):
                    why = ('replaces the layer output channel by channel'
                           if self.method == 'AblationCAM' else
                           'needs the gradient of one output tensor')
                    raise LayerError(
                        f'--method {self.method} cannot run on layer {name!r}: it outputs '
                        f'{len(maps)} feature maps, and {self.method} {why}. Name the levels '
                        f'one by one (--target-layers {" ".join(ALL_LEVELS)}) or use eigencam '
                        'or scorecam for this layer.')
                channels = sum(m.shape[1] for m in maps)
            else:
                if out.dim() != 4:
                    raise LayerError(
                        f'Layer {name!r} outputs a tensor of shape {tuple(out.shape)}; box AM '
                        'needs (B, C, H, W) feature maps. Pick a convolutional layer, e.g. '
                        f'{DEFAULT_TARGET_LAYERS[0]}.')
                channels = out.shape[1]
            if self.method == 'ScoreCAM':
                need = channels * sample.inputs[0].numel() * 4
                if need > SCORECAM_MAX_BYTES:
                    raise LayerError(
                        f'--method scorecam on layer {name!r} would hold {channels} masked '
                        f'copies of the input ({need / 1024 ** 3:.1f} GiB). Expected at most '
                        f'{SCORECAM_MAX_BYTES / 1024 ** 3:.0f} GiB: pick a layer with fewer '
                        'channels, or use ablationcam.')


def box_titles(dets: Detections, classes: Sequence[str]) -> List[str]:
    """``'<class> <score>'`` for each detection."""
    return [f'{name} {score:.2f}' for name, score in zip(dets.names(classes), dets.scores)]

