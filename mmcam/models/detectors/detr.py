"""Query-based detectors: DETR, Deformable DETR, Conditional DETR, DAB-DETR, DINO.

Each kept detection is one decoder query of the last decoder layer: its confidence is that
query's class probability (softmax over the classes and "no object" for DETR, a sigmoid for
Deformable DETR and DINO). :meth:`QueryAdapter.detect` runs the detector's own transformer and
``predict_by_feat`` (its top-k over queries and classes, rescaled), then finds the query each
kept box came from; :class:`QueryScores` re-runs the network and reads that query's logit.
"""
from __future__ import annotations

import inspect
from typing import List

import numpy as np
import torch
from torch import nn

from mmcam.models.detectors.base import (DetectorAdapter, OriginScores, best_first, origin_of,
                                         register_adapter, scores_of)
from mmcam.models.detectors.dense import level_layers
from mmcam.structures import Detections, Sample


@register_adapter
class QueryAdapter(DetectorAdapter):
    """mmdet's DETR-like detectors (DetectionTransformer with a DETRHead-derived head)."""

    family = 'mmdet query-based'
    heads = ('DETRHead', 'DeformableDETRHead', 'ConditionalDETRHead', 'DABDETRHead', 'DINOHead')

    @classmethod
    def supports(cls, model: nn.Module) -> bool:
        from mmdet.models.dense_heads import DETRHead
        from mmdet.models.detectors import DetectionTransformer
        head = getattr(model, 'bbox_head', None)
        return (isinstance(model, DetectionTransformer) and isinstance(head, DETRHead)
                and type(head)._predict_by_feat_single is DETRHead._predict_by_feat_single)

    def __init__(self, model: nn.Module) -> None:
        super().__init__(model)
        self.sigmoid = bool(self.head.loss_cls.use_sigmoid)
        self._forward_args = list(inspect.signature(self.head.forward).parameters)

    def family_of(self, model: nn.Module) -> str:
        return type(model).__name__

    def default_target_layers(self) -> List[str]:
        return level_layers(self.model)

    def head_outputs(self, inputs: torch.Tensor, data_sample) -> tuple:
        """``(cls logits, boxes)`` of every decoder layer: ``(L, B, Q, C')``, ``(L, B, Q, 4)``."""
        feats = self.model.extract_feat(inputs)
        head_inputs = self.model.forward_transformer(feats, [data_sample] * inputs.shape[0])
        return self.head(**{k: head_inputs[k] for k in self._forward_args if k in head_inputs})

    def confidences(self, cls: torch.Tensor) -> torch.Tensor:
        """``(Q, C)`` confidence of every query and class, as ``predict_by_feat`` computes it."""
        return cls.sigmoid() if self.sigmoid else cls.softmax(-1)[:, :-1]

    @torch.no_grad()
    def detect(self, sample: Sample, score_thr: float = 0.3, topk: int = -1) -> Detections:
        from mmdet.structures.bbox import bbox_cxcywh_to_xyxy
        meta = sample.data_sample.metainfo
        #: The data sample (its input shape and padding) that QueryScores re-runs with.
        self.data_sample = sample.data_sample
        outs = self.head_outputs(sample.inputs, sample.data_sample)
        result = self.head.predict_by_feat(*outs, batch_img_metas=[meta], rescale=True)[0]
        bboxes, labels, scores = best_first(result, topk, score_thr)
        cls, boxes = outs[0][-1][0], outs[1][-1][0]
        conf = self.confidences(cls)
        # every query's box in input pixels, then as predict_by_feat rescales it
        h, w = meta['img_shape'][:2]
        xyxy = bbox_cxcywh_to_xyxy(boxes) * boxes.new_tensor([w, h, w, h])
        xyxy[:, 0::2] = xyxy[:, 0::2].clamp(0, w)
        xyxy[:, 1::2] = xyxy[:, 1::2].clamp(0, h)
        sx, sy = np.asarray(meta.get('scale_factor', (1.0, 1.0)), np.float64).reshape(-1)[:2]
        rescaled = xyxy / xyxy.new_tensor([sx, sy, sx, sy])
        origin = np.asarray([origin_of(conf[:, label], score, rescaled, box)
                             for box, label, score in zip(bboxes, labels, scores)], np.int64)
        centre = ((xyxy[origin, :2] + xyxy[origin, 2:]) / 2).cpu().numpy().astype(np.float64) \
            if len(origin) else np.zeros((0, 2))
        return Detections(bboxes.cpu().numpy(), labels.cpu().numpy(), scores.cpu().numpy(),
                          origin, np.full(len(origin), -1, np.int64), centre)

    def box_scores(self, detections: Detections, kind: str = 'logit',
                   regression: bool = False) -> 'QueryScores':
        return QueryScores(self, detections.origin, detections.labels, kind, regression)


class QueryScores(OriginScores):
    """``inputs (B, 3, H, W) -> (B, N)``: each kept box's class score at its own query (last
    decoder layer). With ``regression``, ``(B, 5N)``: then each query's 4 box outputs
    (normalised centre x, y, width, height)."""

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        cls, boxes = self.adapter.head_outputs(inputs, self.adapter.data_sample)
        idx, labels = self.origin.to(inputs.device), self.labels.to(inputs.device)
        cls = cls[-1][:, idx]                                                 # (B, N, C')
        if self.adapter.sigmoid:
            scores = scores_of(cls.gather(2, labels[None, :, None].expand(
                cls.shape[0], -1, 1))[..., 0], None, self.kind)
        else:
            scores = scores_of(cls, None, self.kind, softmax=True,
                               label=labels.expand(cls.shape[0], -1))
        if not self.regression:
            return scores
        return torch.cat([scores, boxes[-1][:, idx].reshape(scores.shape[0], -1)], dim=1)
