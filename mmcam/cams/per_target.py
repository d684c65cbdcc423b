"""One gradient map per target of one input: one forward pass, one backward pass per target.

grad-cam's ``BaseCAM`` explains a batch: one copy of the input per target, so N targets of one
image cost N forward and N backward passes. Box AM explains every detection of one image, so
here the image goes forward once and each target's gradient at the target layers comes from
``torch.autograd.grad`` with the graph kept. A target layer that the model's forward pass does
not run again (box AM shares the backbone and neck pass of the detection: the adapter's
``features_once``) is read from the activations the caller kept from that pass. The maps are made by the method's own
``get_cam_image`` and post-processed as ``BaseCAM`` does (ReLU, min-max scale, resize to the
input, mean over layers, rescale), so they equal grad-cam's maps for one input copy per target.

A target may be several scalars (a box's four coordinates): each scalar gets its own map and
the target's map is their element-wise maximum.
"""
from __future__ import annotations

from typing import Any, Callable, List, Optional, Sequence

import numpy as np
import torch
from pytorch_grad_cam.base_cam import BaseCAM
from pytorch_grad_cam.utils.image import scale_cam_image

#: A scalar to explain, read off the model's output.
Scalar = Callable[[torch.Tensor], torch.Tensor]


def per_target_cams(cam: BaseCAM, inputs: torch.Tensor, targets: Sequence[Sequence[Scalar]],
                    earlier: Optional[Sequence[Any]] = None) -> np.ndarray:
    """``(len(targets), H, W)`` maps in input pixels, float32 in [0, 1].

    Args:
        cam: a gradient method built on the model and its target layers; only its maths
            (``get_cam_image``, ``aggregate_multi_layers``) is used, its own hooks are released.
        inputs: one input, ``(1, 3, H, W)``.
        targets: per map, the scalars whose maps are combined by their maximum.
        earlier: per target layer, its output (graph included) from an earlier pass of the
            same graph, used where this forward pass does not run the layer.
    """
    cam.activations_and_grads.release()
    layers, reshape = list(cam.target_layers), cam.reshape_transform
    acts: List[torch.Tensor] = [None] * len(layers)

    def keep(index: int):
        def hook(module, args, output):
            acts[index] = reshape(output) if reshape is not None else output
        return hook

    handles = [layer.register_forward_hook(keep(i)) for i, layer in enumerate(layers)]
    try:
        with torch.enable_grad():
            outputs = cam.model(inputs)
    finally:
        for handle in handles:
            handle.remove()
    for i, act in enumerate(earlier or []):
        if acts[i] is None and act is not None:
            acts[i] = reshape(act) if reshape is not None else act
    if any(a is None or not a.requires_grad for a in acts):
        raise RuntimeError('a target layer did not run, or its output has no gradient')
    activations = [a.detach().cpu().numpy() for a in acts]
    size = (inputs.shape[-1], inputs.shape[-2])
    maps = []
    for scalars in targets:
        parts = []
        for scalar in scalars:
            grads = torch.autograd.grad(scalar(outputs), acts, retain_graph=True,
                                        allow_unused=True)
            per_layer = []
            for layer, act, grad in zip(layers, activations, grads):
                grad = np.zeros_like(act) if grad is None else grad.detach().cpu().numpy()
                image = cam.get_cam_image(inputs, layer, None, act, grad, False)
                per_layer.append(scale_cam_image(np.maximum(image, 0), size)[:, None])
            parts.append(cam.aggregate_multi_layers(per_layer)[0])
        maps.append(np.max(parts, axis=0))
    return np.stack(maps).astype(np.float32)
