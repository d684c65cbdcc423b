"""Feature maps of named layers for one prepared sample: the inferencer stage shared by
``demo/featmap_vis_demo.py`` and :class:`mmcam.engine.hooks.FeatMapVisualizationHook`."""
from __future__ import annotations

from typing import Any, List, Sequence, Tuple

import torch

from mmcam.apis.model_loader import InputError, LoadedModel, Sample, find_module
from mmcam.cams.layers import backbone_extra_tokens
from mmcam.cams.reshape import TokenReshape, patch_grid_probe
from mmcam.models.capture import capture_outputs
from mmcam.visualization.featmap import split_levels


def featmap_levels(loaded: LoadedModel, sample: Sample,
                   layers: Sequence[str]) -> Tuple[List[Tuple[str, torch.Tensor]], Any]:
    """Run ``sample`` through the model's ``predict`` and capture the outputs of ``layers``.

    Returns ``(levels, predictions)``: one ``(title, (C, h, w) tensor)`` per feature map in the
    layers' outputs (pyramid outputs give one per level; transformer tokens are laid out on the
    patch grid the backbone reports for this input) and the model's predictions.

    Raises:
        InputError: for an unknown layer, one that did not run, or one without a feature map.
    """
    model = loaded.model
    modules = {name: find_module(model, name) for name in layers}
    backbone = getattr(model, 'backbone', model)
    grids = {name: TokenReshape(name, backbone_extra=backbone_extra_tokens(backbone))
             for name in layers}
    with capture_outputs(modules) as outputs, torch.no_grad(), \
            patch_grid_probe(backbone, list(grids.values()), sample.inputs.shape[-2:]):
        predictions = model.predict(sample.inputs, [sample.data_sample])
    levels = []
    for name in layers:
        if name not in outputs:
            raise InputError(f'Layer {name!r} did not run during the forward pass; choose a '
                             'layer on the prediction path (see --preview-model).')
        try:
            levels += split_levels(name, outputs[name], tokens_to_grid=grids[name])
        except ValueError as err:
            raise InputError(str(err)) from None
    return levels, predictions
