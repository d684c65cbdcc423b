"""mmyolo's heads: YOLOv5, YOLOv6, YOLOv7, YOLOv8, YOLOX, RTMDet and PPYOLOE.

All of them decode through ``YOLOv5Head.predict_by_feat``: per prior, a class output, four box
outputs and (YOLOv5, YOLOv7, YOLOX) an objectness; the confidence is the class probability
times the objectness. The boxes are letterboxed (``pad_param``) and rescaled by the head itself.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, List, Optional, Sequence

import torch
from torch import nn

from mmcam.models.detectors.base import head_decodes_with, register_adapter, with_score_thr
from mmcam.models.detectors.dense import DensePriorAdapter


@register_adapter
class YOLOAdapter(DensePriorAdapter):
    """mmyolo's YOLO-family detectors (the heads that use YOLOv5Head.predict_by_feat)."""

    family = 'mmyolo'
    heads = ('YOLOv5Head', 'YOLOv6Head', 'YOLOv7Head', 'YOLOv8Head', 'YOLOXHead', 'RTMDetHead',
             'PPYOLOEHead')

    @classmethod
    def supports(cls, model: nn.Module) -> bool:
        from mmyolo.models.dense_heads import YOLOv5Head
        return head_decodes_with(model, YOLOv5Head)

    def __init__(self, model: nn.Module) -> None:
        super().__init__(model)
        #: The out_layers inputs that :meth:`replay` keeps, while it is open.
        self._replay: Optional[List[torch.Tensor]] = None

    def family_of(self, model: nn.Module) -> str:
        return type(model.bbox_head).__name__.replace('Head', '')

    @property
    def class_channels(self) -> int:
        return self.head.num_classes

    def head_outputs(self, inputs: torch.Tensor) -> tuple:
        if self._replay is None:
            return self.head(self.model.extract_feat(inputs))
        levels = [out_layer(x) for out_layer, x in zip(self.model.neck.out_layers, self._replay)]
        # The head runs on each level alone: a level the ablation left as it was (one row)
        # goes through it once, and its outputs are repeated for the batch.
        batch = inputs.shape[0]
        return tuple(None if kind is None else
                     [o.expand(batch, *o.shape[1:]) if o is not None and o.shape[0] == 1 else o
                      for o in kind]
                     for kind in self.head(tuple(levels)))

    def decoded_boxes(self, outs: tuple, meta: dict) -> torch.Tensor:
        head = self.head
        cls_scores = outs[0]
        sizes = [c.shape[2:] for c in cls_scores]
        strides = torch.cat([self.priors(outs).new_full((s.numel() * head.num_base_priors,),
                                                        stride)
                             for s, stride in zip(sizes, head.featmap_strides)])
        return head.bbox_coder.decode(self.priors(outs)[None],
                                      self.flatten_regression(outs)[:1], strides)[0]

    def predict(self, outs: tuple, meta: dict, score_thr: float):
        return self.head.predict_by_feat(*outs, batch_img_metas=[meta],
                                         cfg=with_score_thr(self.head.test_cfg, score_thr),
                                         rescale=True, with_nms=True)[0]

    @contextmanager
    def replay(self, inputs: torch.Tensor, layers: Sequence[nn.Module]) -> Iterator[bool]:
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
