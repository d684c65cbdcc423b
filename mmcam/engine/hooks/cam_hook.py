"""Class activation maps of an mmpretrain classifier while a Runner validates or tests."""
from __future__ import annotations

from typing import List, Optional, Sequence, Union

from torch import nn

from mmcam.apis.cam_inferencer import CAMInferencer
from mmcam.apis.model_loader import LoadedModel
from mmcam.cams.methods import get_method
from mmcam.engine.hooks.base import ExplainHook, Picture, dataset_meta
from mmcam.registry import HOOKS


@HOOKS.register_module()
class CAMVisualizationHook(ExplainHook):
    """Draw CAMs of the first samples of val/test epochs, through the runner's visualizer.

    Example config::

        custom_imports = dict(imports=['mmcam'], allow_failed_imports=False)
        custom_hooks = [dict(type='mmcam.CAMVisualizationHook', methods=['GradCAM'],
                             max_samples=8, category='gt')]

    Args:
        methods: grad-cam method names (case-insensitive), drawn side by side.
        target_layers: layer names as ``tools/vis_cam.py`` takes them; default as there.
        category: ``'pred'`` explains the predicted class, ``'gt'`` the ground-truth one.
        num_extra_tokens: override the backbone's extra-token count (ViT-like models).
        **kwargs: ``phases``, ``interval``, ``max_samples``, ``alpha`` of :class:`ExplainHook`.
    """
    kind = 'cam'

    def __init__(self,
                 methods: Union[str, Sequence[str]] = ('GradCAM', ),
                 target_layers: Optional[Sequence[str]] = None,
                 category: str = 'pred',
                 num_extra_tokens: Optional[int] = None,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        if category not in ('pred', 'gt'):
            raise ValueError(f"category={category!r}: expected 'pred' or 'gt'.")
        self.methods = [methods] if isinstance(methods, str) else list(methods)
        for name in self.methods:
            get_method(name)  # an unknown name fails when the config is built, not mid-run
        self.target_layers = target_layers
        self.category = category
        self.num_extra_tokens = num_extra_tokens
        self._inferencer = None

    def _get_inferencer(self, model: nn.Module, runner):
        if self._inferencer is None or self._inferencer.classifier is not model:
            self._inferencer = CAMInferencer(
                LoadedModel.from_model(model, 'mmpretrain', dataset_meta(runner)),
                target_layers=self.target_layers, num_extra_tokens=self.num_extra_tokens)
        return self._inferencer

    def explain(self, model, data_batch, outputs, indices, runner) -> List[Picture]:
        inferencer = self._get_inferencer(model, runner)
        pictures = []
        for sample in inferencer.loaded.samples_from_batch(data_batch, indices):
            categories = None
            if self.category == 'gt':
                categories = [int(sample.data_sample.gt_label[0])]
            result = inferencer.explain(sample, methods=self.methods,
                                        target_category=categories)
            index = sample.data_sample.metainfo.get('sample_idx', len(pictures))
            pictures.append((f'{index}', inferencer.draw(result, show_input=True,
                                                         alpha=self.alpha)))
        return pictures
