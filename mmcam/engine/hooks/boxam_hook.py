"""Box-level activation maps of a detector while a Runner validates or tests."""
from __future__ import annotations

from typing import List, Optional, Sequence

from mmcam.apis.boxam import BoxAMInferencer
from mmcam.apis.model_loader import LoadedModel
from mmcam.cams.box_methods import check_explain, get_box_method
from mmcam.engine.hooks.base import ExplainHook, Picture, dataset_meta
from mmcam.registry import HOOKS


@HOOKS.register_module()
class BoxAMVisualizationHook(ExplainHook):
    """Draw box AMs of the detections in the first samples of val/test epochs.

    Example config::

        custom_imports = dict(imports=['mmcam'], allow_failed_imports=False)
        custom_hooks = [dict(type='mmcam.BoxAMVisualizationHook', methods=['gradcam'],
                             score_thr=0.3, per_box=True)]

    Args:
        methods: box-AM methods (:mod:`mmcam.cams.box_methods`: ``gradcam``, ``gradcam++``,
            ``gradcam-avg``, ``xgradcam``, ``layercam``, ``eigencam``, ``ablationcam``, ...);
            one picture per method.
        target_layers: layer names; default as ``demo/boxam_vis_demo.py``.
        score_thr, topk: which detections to explain.
        per_box: one panel per box instead of the combined map.
        explain: ``class``, ``box`` or ``both`` (see ``demo/boxam_vis_demo.py --explain``).
        **kwargs: ``phases``, ``interval``, ``max_samples``, ``alpha`` of :class:`ExplainHook`.
    """
    kind = 'boxam'

    def __init__(self,
                 methods: Sequence[str] = ('gradcam', ),
                 target_layers: Optional[Sequence[str]] = None,
                 score_thr: float = 0.3,
                 topk: int = 10,
                 per_box: bool = False,
                 explain: str = 'class',
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self.methods = [methods] if isinstance(methods, str) else list(methods)
        for name in self.methods:
            check_explain(get_box_method(name), explain)
        self.target_layers = target_layers
        self.score_thr, self.topk, self.per_box = score_thr, topk, per_box
        self.explain_what = explain
        self._inferencers: dict = {}

    def _get_inferencers(self, model, runner) -> dict:
        if not self._inferencers or next(iter(self._inferencers.values())).loaded.model \
                is not model:
            loaded = LoadedModel.from_model(model, runner.cfg.get('default_scope', 'mmyolo'),
                                            dataset_meta(runner))
            self._inferencers = {
                m: BoxAMInferencer(loaded, m, self.target_layers,
                                   score_thr=self.score_thr, topk=self.topk,
                                   explain=self.explain_what)
                for m in self.methods}
        return self._inferencers

    def explain(self, model, data_batch, outputs, indices, runner) -> List[Picture]:
        inferencers = self._get_inferencers(model, runner)
        loaded = next(iter(inferencers.values())).loaded
        pictures = []
        # Boxes come in original-image pixels: draw on the original image.
        for sample in loaded.samples_from_batch(data_batch, indices, original=True):
            index = sample.data_sample.metainfo.get('img_id', len(pictures))
            for method, inferencer in inferencers.items():
                result = inferencer.explain(sample)
                pictures.append((f'{index}_{method}', inferencer.draw(
                    result, per_box=self.per_box, alpha=self.alpha)))
        return pictures
