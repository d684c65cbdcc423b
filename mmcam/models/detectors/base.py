"""The detector adapter interface, and the registry that picks the adapter of a model.

Box AM explains one detection at a time, so every kept detection needs a score that is a
differentiable function of the network input. How to get it depends on the head: a dense head
decoded the box from one prior (anchor or point) of one pyramid level, a two-stage detector from
one RoI, a query-based one from one query. An adapter hides that behind four calls:

* :meth:`DetectorAdapter.supports` -- is this model one of mine?
* :meth:`DetectorAdapter.default_target_layers` -- the layers to explain when none are given;
* :meth:`DetectorAdapter.detect` -- exactly the boxes the detector's own ``predict()`` reports,
  each with its ``origin`` (prior, RoI or query index);
* :meth:`DetectorAdapter.box_scores` -- a module ``inputs (B, 3, H, W) -> (B, N)`` giving each
  detection's own score at its origin (and, on request, its box outputs), differentiably.

Both start from the detector's ``extract_feat``, which :meth:`DetectorAdapter.features_once`
lets them share (one backbone and neck pass per image for the gradient methods).

Adding a family is one new subclass decorated with :func:`register_adapter`; nothing else in
mmcam learns its name. See docs/en/boxam_vis.md, "Adding a detector family".
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

#: Score kinds: ``logit`` (log-odds of the confidence, never saturates; for gradients and
#: ScoreCAM's softmax) and ``confidence`` (the probability the detector reports; positive, as
#: AblationCAM's relative score drop needs).
SCORE_KINDS = ('logit', 'confidence')

#: Every registered adapter class, tried in order.
ADAPTERS: List[type] = []


def register_adapter(cls: type) -> type:
    """Class decorator: make an adapter known to :func:`build_adapter`."""
    ADAPTERS.append(cls)
    return cls


class DetectorAdapter:
    """One detector family: kept detections and a differentiable score per detection."""

    #: Shown in messages and in ``--preview-model``.
    family = 'detector'
    #: The heads this adapter knows, for the error that lists the supported families.
    heads: Sequence[str] = ()

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.head = getattr(model, 'bbox_head', None)
        self.family = self.family_of(model)

    @classmethod
    def supports(cls, model: nn.Module) -> bool:
        raise NotImplementedError

    def family_of(self, model: nn.Module) -> str:
        """The family name of this model, e.g. ``YOLOv8`` (defaults to the adapter's)."""
        return type(self).family

    def default_target_layers(self) -> List[str]:
        """The layers box AM explains when none are given (printed by the tools)."""
        raise NotImplementedError

    def detect(self, sample: Sample, score_thr: float = 0.3, topk: int = -1) -> Detections:
        """The detector's own kept boxes for ``sample``, highest score first, with origins.

        Args:
            score_thr: keep boxes whose confidence is at least this (replaces the config's).
            topk: keep at most this many boxes; -1 keeps all.
        """
        raise NotImplementedError

    def box_scores(self, detections: Detections, kind: str = 'logit',
                   regression: bool = False) -> nn.Module:
        """A module ``inputs -> (B, N)``: each detection's score at its origin; with
        ``regression``, ``(B, 5N)``: the N scores, then each box's 4 raw box outputs."""
        raise NotImplementedError

    @contextmanager
    def features_once(self, inputs: torch.Tensor) -> Iterator[None]:
        """While open, the detector's ``extract_feat(inputs)`` (backbone and neck) runs once,
        with gradients, and every later call with the same ``inputs`` returns those features,
        graph included: detection and the per-box scores of gradient box AM share one pass.

        Every family's ``detect`` and score module start from ``model.extract_feat``; only what
        comes after it (the head, or the RoI or query head) runs again.
        """
        model, kept = self.model, []
        extract_feat = model.extract_feat

        def once(x: torch.Tensor, *args, **kwargs):
            if x is not inputs or args or kwargs:
                return extract_feat(x, *args, **kwargs)
            if not kept:
                with torch.enable_grad():
                    kept.append(extract_feat(x))
            return kept[0]

        shadowed = vars(model).get('extract_feat')
        model.extract_feat = once
        try:
            yield
        finally:
            if shadowed is None:
                del model.extract_feat
            else:
                model.extract_feat = shadowed

    @contextmanager
    def replay(self, inputs: torch.Tensor, layers: Sequence[nn.Module]) -> Iterator[bool]:
        """While open, re-running the scores on ``inputs`` may skip the work before
        ``layers`` (AblationCAM re-runs the same image many times). Yields whether it does;
        by default nothing is skipped."""
        yield False


def head_decodes_with(model: nn.Module, head_type: type,
                      method: str = 'predict_by_feat') -> bool:
    """Whether ``model.bbox_head`` is a ``head_type`` that decodes with ``head_type``'s own
    ``method`` (a subclass that overrides it decodes its own way, which an adapter must know)."""
    head = getattr(model, 'bbox_head', None)
    return isinstance(head, head_type) and \
        getattr(type(head), method) is getattr(head_type, method)


def with_score_thr(test_cfg, score_thr: float):
    """A copy of a head's ``test_cfg`` with ``score_thr`` replaced (the head's own is kept)."""
    cfg = copy.deepcopy(test_cfg)
    cfg.score_thr = float(score_thr)
    return cfg


def origin_of(scores: torch.Tensor, score: torch.Tensor, places: torch.Tensor,
              place: torch.Tensor) -> int:
    """Where a kept detection came from, when the head's decoding and NMS dropped the index.

    Its reported score equals its origin's (same arithmetic, so equal up to rounding); among
    candidates with equal scores (flat images give many) the one whose place (decoded box or
    centre, ``places[i]``) is nearest the detection's ``place`` wins.
    """
    diff = (scores - score).abs()
    candidates = torch.nonzero(diff <= diff.min() + 1e-6 * max(1.0, float(score)))[:, 0]
    return int(candidates[torch.argmin((places[candidates] - place).abs().sum(1))])


def best_first(result, topk: int = -1, score_thr: Optional[float] = None) -> Tuple[
        torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(bboxes, labels, scores)`` of a head's result, highest score first: at most ``topk``
    (-1: all), and with ``score_thr`` only those scoring at least that (for heads whose own
    decoding has no threshold)."""
    if score_thr is not None:
        result = result[result.scores >= score_thr]
    order = torch.argsort(result.scores, descending=True)
    if topk is not None and topk >= 0:
        order = order[:topk]
    return result.bboxes[order].float(), result.labels[order].long(), result.scores[order].float()


class OriginScores(nn.Module):
    """Base of the adapters' score modules: ``inputs (B, 3, H, W) -> (B, N)``, the N kept boxes'
    scores, each read at its own origin (with ``regression``, ``(B, 5N)``: then each box's four
    box outputs there).

    It holds the detector as a submodule, so the CAM methods find and replace its layers, and
    the origins (prior, cell or query indices; RoI boxes) and labels as buffers.
    """

    #: Keep every pyramid level in the graph, with weight 0, where the scores read only some:
    #: grad-cam's own classes need a gradient at each target layer, also at a level no kept
    #: box comes from. The zero gradients still run backward through the head and the neck
    #: (on YOLOv5-s, 8 boxes: 1.2 -> 6.5 ms a box); callers that read gradients with
    #: ``allow_unused`` (:func:`mmcam.cams.per_target.per_target_cams`) turn it off.
    join_levels = True

    def __init__(self, adapter: DetectorAdapter, origin, labels: Sequence[int],
                 kind: str = 'logit', regression: bool = False) -> None:
        super().__init__()
        if kind not in SCORE_KINDS:
            raise ValueError(f'kind={kind!r}: expected one of {SCORE_KINDS}.')
        self.detector = adapter.model
        self.adapter = adapter
        self.kind, self.regression = kind, regression
        origin = np.asarray(origin)
        self.register_buffer('origin', torch.as_tensor(
            origin, dtype=torch.long if origin.dtype.kind in 'iu' else torch.float32),
            persistent=False)
        self.register_buffer('labels', torch.as_tensor(np.asarray(labels), dtype=torch.long),
                             persistent=False)


def build_adapter(model: nn.Module) -> DetectorAdapter:
    """The adapter of the first registered family that supports ``model``."""
    for cls in ADAPTERS:
        if cls.supports(model):
            return cls(model)
    head = getattr(model, 'bbox_head', None)
    found = (f'the head {type(head).__module__}.{type(head).__name__}' if head is not None
             else f'the model {type(model).__name__}, which has no bbox_head')
    known = '; '.join(f'{cls.family} ({", ".join(cls.heads)})' for cls in ADAPTERS)
    raise InputError(
        f'Box AM does not support {found}. Expected a detector of one of these families: '
        f'{known}. To add a head, see docs/en/boxam_vis.md, "Adding a detector family".')


def scores_of(cls_logit: torch.Tensor, factor_logit: torch.Tensor | None, kind: str,
              softmax: bool = False, label: torch.Tensor | None = None) -> torch.Tensor:
    """A detection's score from its class output and optional score factor (objectness or
    centerness): the confidence ``p`` the detector reports, or its log-odds ``log p/(1-p)``.

    With ``softmax``, ``cls_logit`` is ``(..., C + 1)`` (last column: background) and ``label``
    picks the class (a softmax head has no score factor); otherwise ``cls_logit`` is the
    class's own sigmoid logit.
    """
    if kind not in SCORE_KINDS:
        raise ValueError(f'kind={kind!r}: expected one of {SCORE_KINDS}.')
    if softmax:
        log_all = F.log_softmax(cls_logit, dim=-1)
        log_c = log_all.gather(-1, label[..., None])[..., 0]
        if kind == 'confidence':
            return log_c.exp()
        others = log_all.scatter(-1, label[..., None], float('-inf'))
        return log_c - torch.logsumexp(others, dim=-1)
    if factor_logit is None:
        # the log-odds of a sigmoid class score is the logit itself
        return cls_logit.sigmoid() if kind == 'confidence' else cls_logit
    if kind == 'confidence':
        return cls_logit.sigmoid() * factor_logit.sigmoid()
    # log(p / (1 - p)) with p = s(c) s(f), where 1 - p = s(-c) + s(c) s(-f): stable for
    # confident boxes, whose p rounds to 1 in float32.
    log_p = F.logsigmoid(cls_logit) + F.logsigmoid(factor_logit)
    log_1mp = torch.logaddexp(F.logsigmoid(-cls_logit),
                              F.logsigmoid(cls_logit) + F.logsigmoid(-factor_logit))
    return log_p - log_1mp
