"""Feature maps of any layer of a classifier or detector while a Runner validates or tests."""
from __future__ import annotations

from typing import List, Optional, Sequence, Tuple, Union

from mmcam.apis.featmap import REDUCTIONS, FeatMapInferencer
from mmcam.engine.hooks.base import ExplainHook, Picture
from mmcam.registry import HOOKS
from mmcam.visualization.featmap import check_arrangement


@HOOKS.register_module()
class FeatMapVisualizationHook(ExplainHook):
    """Draw feature maps of the first samples of val/test epochs (mmpretrain and mmyolo/mmdet).

    Example config::

        custom_imports = dict(imports=['mmcam'], allow_failed_imports=False)
        custom_hooks = [dict(type='mmcam.FeatMapVisualizationHook', target_layers=['neck'],
                             channel_reduction=None, topk=4, arrangement=(2, 2))]

    Args:
        target_layers: module names (``'backbone'``, ``'neck.out_layers[2]'``, ...); a module
            returning several pyramid levels gives one panel per level.
        channel_reduction: ``'squeeze_mean'``, ``'select_max'`` or ``None`` (top-k grid).
        topk, arrangement: the grid for ``channel_reduction=None``, as in mmengine.
        **kwargs: ``phases``, ``interval``, ``max_samples``, ``alpha`` of :class:`ExplainHook`.
    """
    kind = 'featmap'

    def __init__(self,
                 target_layers: Union[str, Sequence[str]] = ('backbone', ),
                 channel_reduction: Optional[str] = 'squeeze_mean',
                 topk: int = 4,
                 arrangement: Tuple[int, int] = (2, 2),
                 **kwargs) -> None:
        super().__init__(**kwargs)
        if channel_reduction not in REDUCTIONS:
            raise ValueError(f'channel_reduction={channel_reduction!r}: expected '
                             "'squeeze_mean', 'select_max' or None.")
        if channel_reduction is None:
            check_arrangement(topk, arrangement)
        self.target_layers = [target_layers] if isinstance(target_layers, str) else list(
            target_layers)
        self.channel_reduction, self.topk, self.arrangement = (channel_reduction, topk,
                                                               tuple(arrangement))
        self._featmaps: Optional[FeatMapInferencer] = None

    def explain(self, model, data_batch, outputs, indices, runner) -> List[Picture]:
        if self._featmaps is None or self._featmaps.loaded.model is not model:
            self._featmaps = FeatMapInferencer(
                model, target_layers=self.target_layers,
                channel_reduction=self.channel_reduction, topk=self.topk,
                arrangement=self.arrangement, alpha=self.alpha,
                scope=runner.cfg.get('default_scope', 'mmpretrain'))
        featmaps = self._featmaps
        pictures = []
        for sample in featmaps.loaded.samples_from_batch(data_batch, indices):
            index = sample.data_sample.metainfo.get('sample_idx', len(pictures))
            pictures.append((f'{index}', featmaps.draw(featmaps.explain(sample))))
        return pictures
