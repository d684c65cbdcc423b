"""The detector adapter: an mmyolo detector + one image -> detections and per-box scores.

Box-level activation maps explain one detection at a time, so every kept detection needs a
score that is a differentiable function of the network input. The head's raw outputs already
hold it: each detection was decoded from one prior (anchor or point) of one pyramid level, and
its confidence is that prior's class probability (times its objectness for YOLOv5 and YOLOX).

:meth:`DetectorAdapter.detect` runs backbone, neck and head once, lets the head's own
``predict_by_feat`` decode, threshold and NMS the outputs (so the boxes are exactly the ones
the detector reports), and then finds the prior each kept box came from. :class:`BoxScores`
re-runs the network and returns, for every kept box, the raw output at its prior for its class.
No training loss and no pseudo ground truth are involved, so every head works the same way.
"""
from __future__ import annotations

import copy
from contextlib import contextmanager
from typing import Iterator, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mmcam.structures import Detections, Sample
from mmcam.utils.errors import InputError

#: Head class -> model family. Each of these heads decodes with YOLOv5Head.predict_by_feat.
SUPPORTED_HEADS = {'YOLOv5Head': 'YOLOv5', 'YOLOv6Head': 'YOLOv6', 'YOLOXHead': 'YOLOX',
                   'RTMDetHead': 'RTMDet'}

#: Score kinds: ``logit`` (log-odds of the confidence, never saturates; for gradients and
#: ScoreCAM's softmax) and ``confidence`` (the probability the detector reports; positive, as
#: AblationCAM's relative score drop needs).
SCORE_KINDS = ('logit', 'confidence')


class DetectorAdapter:
    """Wraps an mmyolo YOLOv5/YOLOv6/YOLOX/RTMDet detector for box-level activation maps."""

    def __init__(self, model: nn.Module) -> None:
        head = getattr(model, 'bbox_head', None)
        head_name = type(head).__name__ if head is not None else None
        # mmdet has heads of the same names (YOLOXHead, RTMDetHead) with another interface.
        if head_name in SUPPORTED_HEADS and not type(head).__module__.startswith('mmyolo'):
            head_name = f'{type(head).__module__}.{head_name}'
        if head_name not in SUPPORTED_HEADS:
            found = (f'the head {head_name}' if head_name else
                     f'the model {type(model).__name__}, which has no bbox_head')
            raise InputError(
                f'Box AM does not support {found}. Expected a detector of the '
                f'{", ".join(SUPPORTED_HEADS.values())} families (heads '
                f'{", ".join(SUPPORTED_HEADS)} of mmyolo); use an mmyolo config of these '
                'families.')
        self.model = model
        self.head = head
        self.family = SUPPORTED_HEADS[head_name]
        #: The out_layers inputs that :meth:`replayed_neck` keeps, while it is open.
        self._replay: Optional[List[torch.Tensor]] = None

    # -- raw outputs ---------------------------------------------------------------------
    def head_outputs(self, inputs: torch.Tensor) -> tuple:
        """Backbone + neck + head: ``(cls_scores, bbox_preds[, objectnesses])`` per level."""
        if self._replay is None:
            return self.head(self.model.extract_feat(inputs))
        levels = [out_layer(x) for out_layer, x in zip(self.model.neck.out_layers, self._replay)]
        batch = inputs.shape[0]
        return self.head(tuple(x.expand(batch, *x.shape[1:]) if x.shape[0] == 1 else x
                               for x in levels))

    @contextmanager
    def replayed_neck(self, inputs: torch.Tensor, layers: Sequence[nn.Module]) -> Iterator[bool]:
        """While open, :meth:`head_outputs` re-runs only the neck's ``out_layers`` and the
        head, on what the backbone and the rest of the neck made of ``inputs`` (one image).

        AblationCAM re-runs the detector on the same image once per batch of channels, with
        the target layer replaced by an ablation layer whose output ignores its input: all the
        work before that layer gave the same result every time. This holds for targets among
        the ``out_layers`` of mmyolo's YOLO necks (each level is ``out_layers[i](outs[i])``);
        for any other layer nothing changes. Yields whether the replay is on.
        """
        from mmyolo.models.necks import BaseYOLONeck
        neck = getattr(self.model, 'neck', None)
        out_layers = list(getattr(neck, 'out_layers', []))
        if not (isinstance(neck, BaseYOLONeck) and type(neck).forward is BaseYOLONeck.forward
                and all(any(layer is o for o in out_layers) for layer in layers)):
            yield False
            return
        cached: List[Optional[torch.Tensor]] = [None] * len(out_layers)

        def keep_input(index: int):
            return lambda module, args: cached.__setitem__(index, args[0])
        handles = [o.register_forward_pre_hook(keep_input(i)) for i, o in enumerate(out_layers)]
        try:
            with torch.no_grad():
                self.model.extract_feat(inputs)
        finally:
            for handle in handles:
                handle.remove()
        self._replay = cached
        try:
            yield True
        finally:
            self._replay = None

    def flatten(self, outs: tuple) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """Per-level outputs -> ``(B, P, C)`` class logits and ``(B, P)`` objectness logits.

        The prior order (level, row, column, anchor) is the one ``predict_by_feat`` uses.
        """
        cls_scores, objectnesses = outs[0], (outs[2] if len(outs) > 2 else None)
        num_classes = self.head.num_classes
        batch = cls_scores[0].shape[0]
        cls = torch.cat([c.permute(0, 2, 3, 1).reshape(batch, -1, num_classes)
                         for c in cls_scores], dim=1)
        obj = None
        if objectnesses is not None and objectnesses[0] is not None:
            obj = torch.cat([o.permute(0, 2, 3, 1).reshape(batch, -1) for o in objectnesses],
                            dim=1)
        return cls, obj

    # -- detection -----------------------------------------------------------------------
    @torch.no_grad()
    def detect(self, sample: Sample, score_thr: float = 0.3, topk: int = -1) -> Detections:
        """The detector's own predictions for ``sample`` (kept boxes only), with their priors.

        Args:
            score_thr: keep boxes whose confidence is at least this (replaces the config's).
            topk: keep at most this many boxes, the highest-scoring first; -1 keeps all.
        """
        outs = self.head_outputs(sample.inputs)
        meta = sample.data_sample.metainfo
        cfg = copy.deepcopy(self.head.test_cfg)
        cfg.score_thr = float(score_thr)
        result = self.head.predict_by_feat(*outs, batch_img_metas=[meta], cfg=cfg,
                                           rescale=True, with_nms=True)[0]
        order = torch.argsort(result.scores, descending=True)
        if topk is not None and topk >= 0:
            order = order[:topk]
        bboxes = result.bboxes[order].float()
        labels = result.labels[order].long()
        scores = result.scores[order].float()
        prior_index = self._match_priors(outs, meta, bboxes, labels, scores)
        level, cell_xy = self._cells(outs, prior_index)
        return Detections(bboxes.cpu().numpy(), labels.cpu().numpy(), scores.cpu().numpy(),
                          prior_index, level, cell_xy)

    def _decoded_boxes(self, outs: tuple) -> torch.Tensor:
        """All priors' boxes in network-input pixels, decoded as ``predict_by_feat`` does."""
        head = self.head
        cls_scores = outs[0]
        sizes = [c.shape[2:] for c in cls_scores]
        priors = torch.cat(head.prior_generator.grid_priors(
            sizes, dtype=cls_scores[0].dtype, device=cls_scores[0].device))
        strides = torch.cat([priors.new_full((s.numel() * head.num_base_priors,), stride)
                             for s, stride in zip(sizes, head.featmap_strides)])
        return head.bbox_coder.decode(priors[None], self.flatten_regression(outs)[:1], strides)[0]

    def _match_priors(self, outs: tuple, meta: dict, bboxes: torch.Tensor,
                      labels: torch.Tensor, scores: torch.Tensor) -> np.ndarray:
        """Find the prior each kept box was decoded from.

        NMS drops the index, so it is recovered: the box's confidence equals its prior's
        (same arithmetic, so equal up to rounding), and among priors with equal confidence
        (flat images can give many) the one whose decoded box is the kept box wins.
        """
        if len(labels) == 0:
            return np.zeros((0,), np.int64)
        cls, obj = self.flatten(outs)
        conf = cls[0].sigmoid()
        if obj is not None:
            conf = conf * obj[0].sigmoid()[:, None]
        decoded = self._decoded_boxes(outs)
        # The kept boxes back in network-input pixels (predict_by_feat's rescale, undone).
        sx, sy = np.asarray(meta.get('scale_factor', (1.0, 1.0)), dtype=np.float64).reshape(-1)[:2]
        top, _, left, _ = (np.asarray(meta['pad_param'], dtype=np.float64).reshape(-1)[:4]
                           if meta.get('pad_param') is not None else (0.0, 0.0, 0.0, 0.0))
        scale = bboxes.new_tensor([sx, sy, sx, sy])
        shift = bboxes.new_tensor([left, top, left, top])
        boxes_in = bboxes * scale + shift
        # Kept boxes were clamped to the original image: clamp the candidates the same way.
        ori_h, ori_w = meta['ori_shape'][:2]
        lo_x, lo_y = left, top
        hi_x, hi_y = left + ori_w * sx, top + ori_h * sy
        index = []
        for box, label, score in zip(boxes_in, labels, scores):
            diff = (conf[:, label] - score).abs()
            candidates = torch.nonzero(diff <= diff.min() + 1e-6 * max(1.0, float(score)))[:, 0]
            cand = decoded[candidates].clone()
            cand[:, 0::2] = cand[:, 0::2].clamp(lo_x, hi_x)
            cand[:, 1::2] = cand[:, 1::2].clamp(lo_y, hi_y)
            index.append(int(candidates[torch.argmin((cand - box).abs().sum(1))]))
        return np.asarray(index, dtype=np.int64)

    def _cells(self, outs: tuple, prior_index: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """Pyramid level and grid-cell centre (network-input pixels) of flat prior indices."""
        sizes = [tuple(c.shape[2:]) for c in outs[0]]
        na = self.head.num_base_priors
        counts = np.cumsum([0] + [h * w * na for h, w in sizes])
        level = np.searchsorted(counts, prior_index, side='right') - 1
        cell_xy = np.zeros((len(prior_index), 2), np.float64)
        for i, (p, lvl) in enumerate(zip(prior_index, level)):
            h, w = sizes[lvl]
            cell = (p - counts[lvl]) // na
            stride = self.head.featmap_strides[lvl]
            stride = stride if isinstance(stride, (tuple, list)) else (stride, stride)
            cell_xy[i] = ((cell % w + 0.5) * stride[0], (cell // w + 0.5) * stride[1])
        return level.astype(np.int64), cell_xy

    def flatten_regression(self, outs: tuple) -> torch.Tensor:
        """Per-level box outputs -> ``(B, P, 4)`` raw regressions, in the priors' order (what
        the head predicts: YOLOv5's offsets, YOLOX's centre and log size, or distances)."""
        batch = outs[1][0].shape[0]
        return torch.cat([b.permute(0, 2, 3, 1).reshape(batch, -1, 4) for b in outs[1]], dim=1)

    def box_scores(self, detections: Detections, kind: str = 'logit',
                   regression: bool = False) -> 'BoxScores':
        """A module ``inputs -> (B, N)`` scores of ``detections``, for the CAM methods; with
        ``regression``, ``(B, 5N)``: the N scores, then each box's 4 raw regression outputs."""
        return BoxScores(self, detections.prior_index, detections.labels, kind, regression)


class BoxScores(nn.Module):
    """``inputs (B, 3, H, W) -> (B, N)``: each kept box's score at its own prior and class.

    ``kind='confidence'`` gives the confidence the detector reports (class probability,
    times objectness where the head has one); ``kind='logit'`` gives its log-odds, which is
    the raw class output itself for heads without objectness. With ``regression``, the
    output is ``(B, 5N)``: the N scores, then box i's four raw regression outputs at its prior
    in columns ``N + 4i .. N + 4i + 3`` (what the box's position and size are decoded from).
    """

    def __init__(self, adapter: DetectorAdapter, prior_index: Sequence[int],
                 labels: Sequence[int], kind: str = 'logit', regression: bool = False) -> None:
        super().__init__()
        if kind not in SCORE_KINDS:
            raise ValueError(f'kind={kind!r}: expected one of {SCORE_KINDS}.')
        self.detector = adapter.model  # a submodule, so CAM methods can find/replace layers
        self.adapter = adapter
        self.kind = kind
        self.regression = regression
        self.register_buffer('prior_index', torch.as_tensor(np.asarray(prior_index),
                                                             dtype=torch.long), persistent=False)
        self.register_buffer('labels', torch.as_tensor(np.asarray(labels), dtype=torch.long),
                             persistent=False)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        outs = self.adapter.head_outputs(inputs)
        scores = self._scores(outs)
        if not self.regression:
            return scores
        boxes = self.adapter.flatten_regression(outs)[:, self.prior_index.to(scores.device)]
        return torch.cat([scores, boxes.reshape(scores.shape[0], -1)], dim=1)

    def _scores(self, outs: tuple) -> torch.Tensor:
        cls, obj = self.adapter.flatten(outs)
        idx = self.prior_index.to(cls.device)
        c = cls[:, idx, self.labels.to(cls.device)]                          # (B, N)
        if obj is None:
            return c.sigmoid() if self.kind == 'confidence' else c
        o = obj[:, idx]
        if self.kind == 'confidence':
            return c.sigmoid() * o.sigmoid()
        # log(p / (1 - p)) with p = s(c) s(o), where 1 - p = s(-c) + s(c) s(-o): stable for
        # confident boxes, whose p rounds to 1 in float32.
        log_p = F.logsigmoid(c) + F.logsigmoid(o)
        log_1mp = torch.logaddexp(F.logsigmoid(-c), F.logsigmoid(c) + F.logsigmoid(-o))
        return log_p - log_1mp
