"""Two-stage detectors with RoI heads: Faster R-CNN, Mask R-CNN (boxes), Cascade R-CNN.

A kept detection was classified from one RoI (one region proposal): its confidence is that
RoI's softmax class probability (Cascade R-CNN: of the logits averaged over its stages, the
RoI refined from stage to stage). :meth:`TwoStageAdapter.detect` runs the detector's own RPN
and RoI head once, lets the last box head decode, threshold and NMS as ``predict()`` does, and
finds the RoI each kept box came from. :class:`RoIScores` keeps those proposals fixed (they are
the detections' origins) and re-runs backbone, neck, RoIAlign and box head on them, so each
score flows back through RoIAlign to the pyramid level its RoI was pooled from.
"""
from __future__ import annotations

from typing import List, Sequence, Tuple

import numpy as np
import torch
from torch import nn

from mmcam.models.detectors.base import (DetectorAdapter, OriginScores, best_first, origin_of,
                                         register_adapter, scores_of, with_score_thr)
from mmcam.models.detectors.dense import level_layers
from mmcam.structures import Detections, Sample


@register_adapter
class TwoStageAdapter(DetectorAdapter):
    """mmdet's two-stage detectors whose RoI head is a StandardRoIHead or CascadeRoIHead."""

    family = 'mmdet two-stage'
    heads = ('StandardRoIHead (Faster/Mask R-CNN)', 'CascadeRoIHead (Cascade R-CNN)')

    @classmethod
    def supports(cls, model: nn.Module) -> bool:
        from mmdet.models.roi_heads import CascadeRoIHead, StandardRoIHead
        from mmdet.models.roi_heads.bbox_heads import BBoxHead
        roi_head = getattr(model, 'roi_head', None)
        if getattr(model, 'rpn_head', None) is None or not isinstance(
                roi_head, (StandardRoIHead, CascadeRoIHead)):
            return False
        heads = roi_head.bbox_head if isinstance(roi_head.bbox_head, nn.ModuleList) else \
            [roi_head.bbox_head]
        return all(isinstance(h, BBoxHead) and not h.custom_cls_channels and
                   type(h)._predict_by_feat_single is BBoxHead._predict_by_feat_single
                   for h in heads)

    def __init__(self, model: nn.Module) -> None:
        super().__init__(model)
        from mmdet.models.roi_heads import CascadeRoIHead
        self.roi_head = model.roi_head
        self.cascade = isinstance(self.roi_head, CascadeRoIHead)
        self.bbox_head = self.roi_head.bbox_head[-1] if self.cascade else self.roi_head.bbox_head

    def family_of(self, model: nn.Module) -> str:
        return type(model).__name__

    def default_target_layers(self) -> List[str]:
        return level_layers(self.model)

    def roi_outputs(self, feats: tuple, rois: torch.Tensor, metas: List[dict],
                    per_image: Sequence[int]) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(rois, class logits, box outputs)`` of the box head (last stage) for ``rois``."""
        if self.cascade:
            rois, cls, boxes = self.roi_head._refine_roi(feats, rois, metas, tuple(per_image))
            return torch.cat(rois), torch.cat(cls), torch.cat(boxes)
        out = self.roi_head._bbox_forward(feats, rois)
        return rois, out['cls_score'], out['bbox_pred']

    @torch.no_grad()
    def detect(self, sample: Sample, score_thr: float = 0.3, topk: int = -1) -> Detections:
        from mmdet.structures.bbox import bbox2roi
        meta = sample.data_sample.metainfo
        #: Read by the cascade's refinement (it clips refined RoIs to the image) in RoIScores.
        self.img_shape = tuple(meta['img_shape'][:2])
        feats = self.model.extract_feat(sample.inputs)
        proposals = self.model.rpn_head.predict(feats, [sample.data_sample], rescale=False)[0]
        rois = bbox2roi([proposals.bboxes])
        out_rois, cls, boxes = self.roi_outputs(feats, rois, [meta], [len(rois)])
        kept = self.bbox_head.predict_by_feat(
            (out_rois, ), (cls, ), (boxes, ), [meta],
            with_score_thr(self.roi_head.test_cfg, score_thr), rescale=True)[0]
        # Every RoI's decoded boxes and scores before NMS, as predict_by_feat computes them.
        every = self.bbox_head.predict_by_feat((out_rois, ), (cls, ), (boxes, ), [meta], None,
                                               rescale=True)[0]
        bboxes, labels, scores = best_first(kept, topk)  # thresholded by the box head
        origin = self._match_rois(every, bboxes, labels, scores)
        roi_boxes = rois[origin, 1:] if len(origin) else rois.new_zeros((0, 4))
        extractor = self.roi_head.bbox_roi_extractor
        extractor = extractor[-1] if isinstance(extractor, nn.ModuleList) else extractor
        level = extractor.map_roi_levels(rois[origin], extractor.num_inputs) \
            if len(origin) else rois.new_zeros((0, ), dtype=torch.long)
        centre = (roi_boxes[:, :2] + roi_boxes[:, 2:]) / 2
        return Detections(bboxes.cpu().numpy(), labels.cpu().numpy(), scores.cpu().numpy(),
                          origin, level.cpu().numpy().astype(np.int64),
                          centre.cpu().numpy().astype(np.float64),
                          origin_boxes=roi_boxes.cpu().numpy())

    def _match_rois(self, every, bboxes: torch.Tensor, labels: torch.Tensor,
                    scores: torch.Tensor) -> np.ndarray:
        """The RoI each kept box came from: the same score for its class (up to rounding) and,
        among equal scores, the same decoded box."""
        agnostic = self.bbox_head.reg_class_agnostic
        index = []
        for box, label, score in zip(bboxes, labels, scores):
            col = 0 if agnostic else int(label) * 4
            index.append(origin_of(every.scores[:, label], score,
                                   every.bboxes[:, col:col + 4], box))
        return np.asarray(index, dtype=np.int64)

    def box_scores(self, detections: Detections, kind: str = 'logit',
                   regression: bool = False) -> 'RoIScores':
        return RoIScores(self, detections.origin_boxes, detections.labels, kind, regression)


class RoIScores(OriginScores):
    """``inputs (B, 3, H, W) -> (B, N)``: each kept box's score from its own (fixed) RoI.

    With ``regression``, ``(B, 5N)``: the N scores, then box i's four box-head outputs for its
    class (the deltas its box is decoded from) in columns ``N + 4i .. N + 4i + 3``.
    """

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        batch, n = inputs.shape[0], len(self.labels)
        feats = self.adapter.model.extract_feat(inputs)
        boxes = self.origin.to(inputs.device).reshape(-1, 4)
        rois = torch.cat([torch.cat([boxes.new_full((n, 1), b), boxes], 1)
                          for b in range(batch)])
        # Image metas are only read by the cascade's refinement (to clip boxes to the image).
        metas = [dict(img_shape=getattr(self.adapter, 'img_shape', tuple(inputs.shape[2:])))
                 ] * batch
        _, cls, deltas = self.adapter.roi_outputs(feats, rois, metas, [n] * batch)
        labels = self.labels.to(inputs.device).expand(batch, -1)
        scores = scores_of(cls.reshape(batch, n, -1), None, self.kind, softmax=True,
                           label=labels)
        if not self.regression:
            return scores
        deltas = deltas.reshape(batch, n, -1, 4)
        if deltas.shape[2] > 1:  # class-specific regression: the box's own class
            deltas = deltas.gather(2, labels[..., None, None].expand(-1, -1, 1, 4))
        return torch.cat([scores, deltas[:, :, 0].reshape(batch, -1)], dim=1)
