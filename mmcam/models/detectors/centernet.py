"""CenterNet: each kept box is a local maximum of one class's centre heat map.

The head outputs, on one level, a heat map per class (already a probability), and a width /
height and a sub-cell offset per cell. A kept detection's confidence is the heat map value of
its class at its cell; :meth:`CenterNetAdapter.detect` lets the head decode (local maxima,
top-k, border and rescale) and finds that cell; :class:`HeatmapScores` reads the value there.
"""
from __future__ import annotations

from typing import List

import numpy as np
import torch
from torch import nn

from mmcam.models.detectors.base import (DetectorAdapter, OriginScores, best_first,
                                         head_decodes_with, origin_of, register_adapter)
from mmcam.models.detectors.dense import level_layers
from mmcam.structures import Detections, Sample

#: Heat map values are probabilities; their log-odds is taken within this distance of 0 and 1.
EPS = 1e-6


@register_adapter
class CenterNetAdapter(DetectorAdapter):
    """mmdet's CenterNetHead."""

    family = 'mmdet CenterNet'
    heads = ('CenterNetHead', )

    @classmethod
    def supports(cls, model: nn.Module) -> bool:
        from mmdet.models.dense_heads import CenterNetHead
        return head_decodes_with(model, CenterNetHead)

    def default_target_layers(self) -> List[str]:
        return level_layers(self.model, size=512)

    def head_outputs(self, inputs: torch.Tensor) -> tuple:
        """``(heat maps, sizes, offsets)``, one level: ``(B, C, H, W)``, ``(B, 2, H, W)`` x 2."""
        heat, wh, offset = self.head(self.model.extract_feat(inputs))
        return heat[0], wh[0], offset[0]

    @torch.no_grad()
    def detect(self, sample: Sample, score_thr: float = 0.3, topk: int = -1) -> Detections:
        meta = sample.data_sample.metainfo
        heat, wh, offset = self.head_outputs(sample.inputs)
        result = self.head.predict_by_feat([heat], [wh], [offset], batch_img_metas=[meta],
                                           rescale=True,
                                           with_nms=self.head.test_cfg.get('nms') is not None)[0]
        bboxes, labels, scores = best_first(result, topk, score_thr)
        # The kept boxes' centres in input pixels (the border and rescale undone).
        _, _, h, w = heat.shape
        in_h, in_w = sample.inputs.shape[2:]
        sx, sy = np.asarray(meta.get('scale_factor', (1.0, 1.0)), np.float64).reshape(-1)[:2]
        top, _, left, _ = np.asarray(meta.get('border', (0, 0, 0, 0)), np.float64)[:4]
        centres = (bboxes[:, :2] + bboxes[:, 2:]) / 2 * bboxes.new_tensor([sx, sy]) + \
            bboxes.new_tensor([left, top])
        ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing='ij')
        cell_xy = torch.stack([(xs.flatten() + 0.5) * in_w / w,
                               (ys.flatten() + 0.5) * in_h / h], 1).to(bboxes)
        origin = np.asarray([origin_of(heat[0, label].flatten(), score, cell_xy, centre)
                             for centre, label, score in zip(centres, labels, scores)], np.int64)
        return Detections(bboxes.cpu().numpy(), labels.cpu().numpy(), scores.cpu().numpy(),
                          origin, np.zeros(len(origin), np.int64),
                          cell_xy[origin].cpu().numpy().astype(np.float64)
                          if len(origin) else np.zeros((0, 2)))

    def box_scores(self, detections: Detections, kind: str = 'logit',
                   regression: bool = False) -> 'HeatmapScores':
        return HeatmapScores(self, detections.origin, detections.labels, kind, regression)


class HeatmapScores(OriginScores):
    """``inputs (B, 3, H, W) -> (B, N)``: each kept box's heat map value (``confidence``) or its
    log-odds (``logit``) at its own cell; with ``regression``, ``(B, 5N)``: then each box's
    width, height and two offsets at that cell."""

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        heat, wh, offset = self.adapter.head_outputs(inputs)
        batch = heat.shape[0]
        cells, labels = self.origin.to(heat.device), self.labels.to(heat.device)
        p = heat.flatten(2)[:, labels, cells]                                  # (B, N)
        scores = p if self.kind == 'confidence' else torch.logit(p, eps=EPS)
        if not self.regression:
            return scores
        boxes = torch.cat([wh.flatten(2), offset.flatten(2)], 1)[:, :, cells]  # (B, 4, N)
        return torch.cat([scores, boxes.transpose(1, 2).reshape(batch, -1)], dim=1)
