"""Dense heads: every kept box was decoded from one prior (anchor or point) of one level.

:meth:`DenseHeadAdapter.detect` runs backbone, neck and head once, lets the head's own
``predict_by_feat`` decode, threshold and NMS the outputs (so the boxes are exactly the ones the
detector reports), then finds the prior each kept box came from. :class:`PriorScores` re-runs
the network and returns, for every kept box, the raw output at its prior for its class. No
training loss and no pseudo ground truth are involved.

This module serves mmdet's heads that decode through ``BaseDenseHead.predict_by_feat``
(RetinaNet, FCOS, ATSS, RTMDet, SSD, FSAF, ...); :mod:`mmcam.models.detectors.yolo` adapts
mmyolo's heads with the same machinery.
"""
from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn

from mmcam.models.detectors.base import (DetectorAdapter, OriginScores, best_first,
                                         head_decodes_with, origin_of, register_adapter, scores_of,
                                         with_score_thr)
from mmcam.models.state import model_state_restored
from mmcam.structures import Detections, Sample


def level_layers(model: nn.Module, size: int = 320) -> List[str]:
    """Names of the modules that output the feature levels the head reads.

    ``extract_feat`` runs once on a blank input; for each level tensor it returns, the
    outermost module that output that very tensor is its layer (``neck.fpn_convs[i]`` of an
    FPN, ``neck.out_layers[i]`` of a YOLO neck), spelled with brackets as mmyolo's demo and
    mmcam's YOLO defaults spell it (``find_module`` reads both spellings). A level made without
    a module (FPN's max pooled extra level) has none: its maps come through the level it was
    pooled from.
    """
    names = {module: name for name, module in model.named_modules()}
    producer = {}

    def record(module, args, output):
        if torch.is_tensor(output):
            producer[id(output)] = module  # outer modules fire last: they win

    handles = [m.register_forward_hook(record) for m in names if m is not model]
    param = next(model.parameters())
    # In eval mode, given back as it was: a Runner's model may be training, and a probe pass
    # in train mode would move its BatchNorm statistics.
    try:
        with model_state_restored(model), torch.no_grad():
            levels = model.extract_feat(param.new_zeros((1, 3, size, size)))
    finally:
        for handle in handles:
            handle.remove()
    layers = []
    for level in levels:
        module = producer.get(id(level))
        if module is not None:
            layers.append(_indexed(names[module]))
    return layers


def _indexed(name: str) -> str:
    """``neck.fpn_convs.0`` -> ``neck.fpn_convs[0]``."""
    parts = name.split('.')
    out = parts[0]
    for part in parts[1:]:
        out += f'[{part}]' if part.isdigit() else f'.{part}'
    return out


def at_priors(maps: Sequence[torch.Tensor], index: torch.Tensor, width: int) -> torch.Tensor:
    """``(B, len(index), width)``: the rows that flattening the per-level ``(B, A * width, H,
    W)`` maps into the priors' order would give at the flat prior indices ``index``, read from
    the levels directly (AblationCAM scores hundreds of copies of an image: flattening every
    prior of each took a third of its time on YOLOv5-s)."""
    parts, positions, start = [], [], 0
    for level in maps:
        _, channels, h, w = level.shape
        per_cell = channels // width
        count = h * w * per_cell
        here = torch.nonzero((index >= start) & (index < start + count))[:, 0]
        if len(here):
            local = index[here] - start
            cell, anchor = local // per_cell, local % per_cell
            channel = anchor[:, None] * width + torch.arange(width, device=index.device)
            parts.append(level[:, channel, (cell // w)[:, None], (cell % w)[:, None]])
            positions.append(here)
        start += count
    return torch.cat(parts, dim=1)[:, torch.argsort(torch.cat(positions))]


class DensePriorAdapter(DetectorAdapter):
    """What every prior-based head shares: flattening, matching boxes to priors, scores.

    A subclass says how the head decodes (:meth:`decoded_boxes`) and how its outputs split
    into class logits, box outputs and an optional score factor (:meth:`split`).
    """

    #: The head's class output is a softmax over the classes and a last background column.
    softmax = False

    def default_target_layers(self) -> List[str]:
        return level_layers(self.model)

    # -- raw outputs ---------------------------------------------------------------------
    def head_outputs(self, inputs: torch.Tensor) -> tuple:
        """Backbone + neck + head: the head's per-level outputs."""
        return self.head(self.model.extract_feat(inputs))

    def split(self, outs: tuple) -> Tuple[list, list, Optional[list]]:
        """``(class outputs, box outputs, score factors or None)``, each a list per level."""
        factors = outs[2] if len(outs) > 2 and outs[2] is not None and \
            outs[2][0] is not None else None
        return outs[0], outs[1], factors

    @property
    def class_channels(self) -> int:
        return self.head.cls_out_channels

    def flatten(self, outs: tuple) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """Per-level outputs -> ``(B, P, C)`` class logits and ``(B, P)`` score-factor logits,
        in the priors' order (level, row, column, anchor), as ``predict_by_feat`` reads them."""
        cls_scores, _, factors = self.split(outs)
        batch = cls_scores[0].shape[0]
        cls = torch.cat([c.permute(0, 2, 3, 1).reshape(batch, -1, self.class_channels)
                         for c in cls_scores], dim=1)
        factor = None
        if factors is not None:
            factor = torch.cat([f.permute(0, 2, 3, 1).reshape(batch, -1) for f in factors],
                               dim=1)
        return cls, factor

    def flatten_regression(self, outs: tuple) -> torch.Tensor:
        """Per-level box outputs -> ``(B, P, 4)`` raw regressions, in the priors' order (what
        the head predicts: offsets, centre and log size, or distances)."""
        boxes = self.split(outs)[1]
        batch = boxes[0].shape[0]
        return torch.cat([b.permute(0, 2, 3, 1).reshape(batch, -1, 4) for b in boxes], dim=1)

    def confidences(self, outs: tuple) -> torch.Tensor:
        """``(P, C)`` confidence of every prior and class of the first image, as reported."""
        cls, factor = self.flatten(outs)
        if self.softmax:
            conf = cls[0].softmax(-1)[:, :-1]
        else:
            conf = cls[0].sigmoid()
        return conf * factor[0].sigmoid()[:, None] if factor is not None else conf

    def priors(self, outs: tuple) -> torch.Tensor:
        cls_scores = self.split(outs)[0]
        return torch.cat(self.head.prior_generator.grid_priors(
            [c.shape[2:] for c in cls_scores], dtype=cls_scores[0].dtype,
            device=cls_scores[0].device))

    def decoded_boxes(self, outs: tuple, meta: dict) -> torch.Tensor:
        """All priors' boxes in network-input pixels, decoded as ``predict_by_feat`` does."""
        return self.head.bbox_coder.decode(self.priors(outs), self.flatten_regression(outs)[0],
                                           max_shape=meta['img_shape'][:2])

    def predict(self, outs: tuple, meta: dict, score_thr: float):
        """The head's own decoding, thresholding and NMS (rescaled to the original image)."""
        cls_scores, boxes, factors = self.split(outs)
        return self.head.predict_by_feat(cls_scores, boxes, factors, batch_img_metas=[meta],
                                         cfg=with_score_thr(self.head.test_cfg, score_thr),
                                         rescale=True, with_nms=True)[0]

    def strides(self) -> List[Tuple[float, float]]:
        strides = getattr(self.head, 'featmap_strides', None) or self.head.prior_generator.strides
        return [s if isinstance(s, (tuple, list)) else (s, s) for s in strides]

    # -- detection -----------------------------------------------------------------------
    @torch.no_grad()
    def detect(self, sample: Sample, score_thr: float = 0.3, topk: int = -1) -> Detections:
        outs = self.head_outputs(sample.inputs)
        meta = sample.data_sample.metainfo
        result = self.predict(outs, meta, score_thr)
        bboxes, labels, scores = best_first(result, topk)  # thresholded by the head
        origin = self._match_priors(outs, meta, bboxes, labels, scores)
        level, cell_xy = self._cells(outs, origin)
        return Detections(bboxes.cpu().numpy(), labels.cpu().numpy(), scores.cpu().numpy(),
                          origin, level, cell_xy)

    def _match_priors(self, outs: tuple, meta: dict, bboxes: torch.Tensor,
                      labels: torch.Tensor, scores: torch.Tensor) -> np.ndarray:
        """Find the prior each kept box was decoded from.

        NMS drops the index: :func:`origin_of` recovers it from the confidence and, among
        equal ones, the decoded box.
        """
        if len(labels) == 0:
            return np.zeros((0,), np.int64)
        conf = self.confidences(outs)
        # The kept boxes back in network-input pixels (predict_by_feat's rescale, undone).
        sx, sy = np.asarray(meta.get('scale_factor', (1.0, 1.0)), dtype=np.float64).reshape(-1)[:2]
        top, _, left, _ = (np.asarray(meta['pad_param'], dtype=np.float64).reshape(-1)[:4]
                           if meta.get('pad_param') is not None else (0.0, 0.0, 0.0, 0.0))
        scale = bboxes.new_tensor([sx, sy, sx, sy])
        shift = bboxes.new_tensor([left, top, left, top])
        boxes_in = bboxes * scale + shift
        # Kept boxes were clamped to the original image: clamp the decoded ones the same way.
        ori_h, ori_w = meta['ori_shape'][:2]
        decoded = self.decoded_boxes(outs, meta)
        decoded[:, 0::2] = decoded[:, 0::2].clamp(left, left + ori_w * sx)
        decoded[:, 1::2] = decoded[:, 1::2].clamp(top, top + ori_h * sy)
        return np.asarray([origin_of(conf[:, label], score, decoded, box)
                           for box, label, score in zip(boxes_in, labels, scores)], np.int64)

    def _cells(self, outs: tuple, prior_index: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """Pyramid level and grid-cell centre (network-input pixels) of flat prior indices."""
        cls_scores = self.split(outs)[0]
        sizes = [tuple(c.shape[2:]) for c in cls_scores]
        # priors per cell, per level (SSD has 4 or 6 anchors depending on the level)
        per_cell = [c.shape[1] // self.class_channels for c in cls_scores]
        counts = np.cumsum([0] + [h * w * na for (h, w), na in zip(sizes, per_cell)])
        level = np.searchsorted(counts, prior_index, side='right') - 1
        cell_xy = np.zeros((len(prior_index), 2), np.float64)
        strides = self.strides()
        for i, (p, lvl) in enumerate(zip(prior_index, level)):
            h, w = sizes[lvl]
            cell = (p - counts[lvl]) // per_cell[lvl]
            sx, sy = strides[lvl]
            cell_xy[i] = ((cell % w + 0.5) * sx, (cell // w + 0.5) * sy)
        return level.astype(np.int64), cell_xy

    def box_scores(self, detections: Detections, kind: str = 'logit',
                   regression: bool = False) -> 'PriorScores':
        return PriorScores(self, detections.origin, detections.labels, kind, regression)


@register_adapter
class DenseHeadAdapter(DensePriorAdapter):
    """mmdet's dense heads that decode through ``BaseDenseHead.predict_by_feat``."""

    family = 'mmdet dense'
    heads = ('RetinaHead', 'FCOSHead', 'ATSSHead', 'RTMDetHead', 'SSDHead',
             'any head decoding through BaseDenseHead.predict_by_feat')

    @classmethod
    def supports(cls, model: nn.Module) -> bool:
        from mmdet.models.dense_heads.base_dense_head import BaseDenseHead
        head = getattr(model, 'bbox_head', None)
        return (head_decodes_with(model, BaseDenseHead)
                and head_decodes_with(model, BaseDenseHead, '_predict_by_feat_single')
                and not type(head).__module__.startswith('mmyolo')
                and hasattr(head, 'prior_generator') and hasattr(head, 'bbox_coder'))

    def __init__(self, model: nn.Module) -> None:
        super().__init__(model)
        self.softmax = not self.head.use_sigmoid_cls

    def family_of(self, model: nn.Module) -> str:
        return type(model.bbox_head).__name__.replace('Head', '')


class PriorScores(OriginScores):
    """``inputs (B, 3, H, W) -> (B, N)``: each kept box's score at its own prior and class.

    ``kind='confidence'`` gives the confidence the detector reports (class probability, times
    objectness or centerness where the head has one); ``kind='logit'`` gives its log-odds,
    which is the raw class output itself for sigmoid heads without a score factor. With
    ``regression``, the output is ``(B, 5N)``: the N scores, then box i's four raw regression
    outputs at its prior in columns ``N + 4i .. N + 4i + 3``.
    """

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        cls_maps, box_maps, factor_maps = self.adapter.split(self.adapter.head_outputs(inputs))
        idx, labels = self.origin, self.labels
        cls = at_priors(cls_maps, idx, self.adapter.class_channels)  # (B, N, classes)
        if self.adapter.softmax:
            scores = scores_of(cls, None, self.kind, softmax=True,
                               label=labels.expand(cls.shape[0], -1))
        else:
            factor = None if factor_maps is None else at_priors(factor_maps, idx, 1)[..., 0]
            scores = scores_of(cls[:, torch.arange(len(idx)), labels], factor, self.kind)
        if self.join_levels:
            scores = scores + 0 * sum(m[:, :1, :1, :1].sum((1, 2, 3)) for m in cls_maps)[:, None]
        if not self.regression:
            return scores
        boxes = at_priors(box_maps, idx, 4)
        return torch.cat([scores, boxes.reshape(scores.shape[0], -1)], dim=1)


@register_adapter
class MMDetYOLOXAdapter(DensePriorAdapter):
    """mmdet's own YOLOX head (its own ``predict_by_feat``: class times objectness)."""

    family = 'mmdet YOLOX'
    heads = ('mmdet YOLOXHead', )

    @classmethod
    def supports(cls, model: nn.Module) -> bool:
        from mmdet.models.dense_heads import YOLOXHead
        return head_decodes_with(model, YOLOXHead)

    def decoded_boxes(self, outs: tuple, meta: dict) -> torch.Tensor:
        cls_scores = outs[0]
        priors = torch.cat(self.head.prior_generator.grid_priors(
            [c.shape[2:] for c in cls_scores], dtype=cls_scores[0].dtype,
            device=cls_scores[0].device, with_stride=True))
        return self.head._bbox_decode(priors, self.flatten_regression(outs)[0])


@register_adapter
class YOLOv3Adapter(DensePriorAdapter):
    """mmdet's YOLOv3 head: one map per level holds, per anchor, 4 box outputs, an
    objectness and the class outputs; the confidence is class times objectness."""

    family = 'mmdet YOLOv3'
    heads = ('YOLOV3Head', )

    @classmethod
    def supports(cls, model: nn.Module) -> bool:
        from mmdet.models.dense_heads import YOLOV3Head
        return head_decodes_with(model, YOLOV3Head)

    @property
    def class_channels(self) -> int:
        return self.head.num_classes

    def split(self, outs: tuple) -> Tuple[list, list, Optional[list]]:
        cls, boxes, objectness = [], [], []
        for pred in outs[0]:
            b, _, h, w = pred.shape
            per_anchor = pred.view(b, self.head.num_base_priors, self.head.num_attrib, h, w)
            boxes.append(per_anchor[:, :, :4].reshape(b, -1, h, w))
            objectness.append(per_anchor[:, :, 4])
            cls.append(per_anchor[:, :, 5:].reshape(b, -1, h, w))
        return cls, boxes, objectness

    def decoded_boxes(self, outs: tuple, meta: dict) -> torch.Tensor:
        pred_maps = outs[0]
        sizes = [p.shape[2:] for p in pred_maps]
        anchors = torch.cat(self.head.prior_generator.grid_priors(sizes,
                                                                  device=pred_maps[0].device))
        raw = self.flatten_regression(outs)[0]
        raw = torch.cat([raw[:, :2].sigmoid(), raw[:, 2:]], dim=1)  # as predict_by_feat does
        strides = torch.cat([raw.new_full((s.numel() * self.head.num_base_priors, ), stride)
                             for s, stride in zip(sizes, self.head.featmap_strides)])
        return self.head.bbox_coder.decode(anchors, raw, strides[:, None])

    def predict(self, outs: tuple, meta: dict, score_thr: float):
        # predict_by_feat squashes the centre outputs in place: give it copies
        return self.head.predict_by_feat(tuple(p.clone() for p in outs[0]),
                                         batch_img_metas=[meta],
                                         cfg=with_score_thr(self.head.test_cfg, score_thr),
                                         rescale=True, with_nms=True)[0]

    def strides(self) -> List[Tuple[float, float]]:
        return [(s, s) for s in self.head.featmap_strides]
