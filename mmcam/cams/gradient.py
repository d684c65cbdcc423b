"""Gradient CAMs whose backward pass stops at the target layers.

grad-cam's gradient methods need the gradient of the target scores at the target layers only,
but they backpropagate as far as the graph goes: to the input when the input requires grad
(grad-cam's callers, mmcam's included, pass one so that a graph exists even with frozen
weights), so the whole backbone before the target layer is differentiated for nothing. Here
the input is detached and the graph starts at the first target layer's output, made a tensor
that requires grad: the forward pass before it records no graph, and the backward pass ends
there. The gradients at the target layers, and so the maps, are the same.

Methods that need more than that (an input gradient, a kept graph, weight gradients) keep
grad-cam's behaviour: with weights that require grad the graph exists anyway.

``eigen_smooth`` projects on the first principal component with :mod:`mmcam.cams.eigen` (a
C x C eigenproblem, sign fixed; grad-cam's full SVD builds an (h*w) x (h*w) matrix it never
reads).
"""
from __future__ import annotations

from typing import List, Optional

import numpy as np
import pytorch_grad_cam
import torch

from mmcam.cams.eigen import EigenGradCAM as _EigenGradCAM
from mmcam.cams.eigen import first_component_projection


def _start_graph(value):
    if isinstance(value, (tuple, list)):
        return type(value)(_start_graph(v) for v in value)
    if isinstance(value, torch.Tensor) and value.is_floating_point() and not value.requires_grad:
        # The clone keeps in-place writes that follow (``out += identity``,
        # ReLU(inplace=True)) legal: they are not allowed on a leaf that requires grad.
        return value.detach().requires_grad_(True).clone()
    return value


def _graph_from_here(module: torch.nn.Module, args, output):
    """Forward hook: an output outside the graph becomes the start of one."""
    return _start_graph(output) if torch.is_grad_enabled() else None


class TargetLayerGraph:
    """Mixin for grad-cam BaseCAM methods: the backward pass ends at the target layers."""

    #: One forward pass of the batch, whose output BaseCAM keeps as ``self.outputs``; with no
    #: targets, each row's predicted class. A caller that needs the scores reads them there
    #: instead of running the model once more.
    one_pass_scores = True

    def forward(self, input_tensor: torch.Tensor, targets: Optional[List] = None,
                eigen_smooth: bool = False) -> np.ndarray:
        if self.compute_input_gradient or not self.detach:
            return super().forward(input_tensor, targets, eigen_smooth)
        # prepend: grad-cam's own hooks on the same layers must see the new output.
        handles = [layer.register_forward_hook(_graph_from_here, prepend=True)
                   for layer in self.target_layers]
        try:
            return super().forward(input_tensor.detach(), targets, eigen_smooth)
        finally:
            for handle in handles:
                handle.remove()


class FirstComponentSmoothing:
    """Mixin for methods that weight the activations per channel (BaseCAM's own
    ``get_cam_image``): ``eigen_smooth`` with mmcam's projection (grad-cam's up to sign)."""

    def weighted_activations(self, input_tensor, target_layer, targets, activations, grads):
        weights = self.get_cam_weights(input_tensor, target_layer, targets, activations, grads)
        return weights[:, :, None, None] * activations

    def get_cam_image(self, input_tensor, target_layer, targets, activations, grads,
                      eigen_smooth: bool = False) -> np.ndarray:
        if not eigen_smooth or np.ndim(activations) != 4:
            return super().get_cam_image(input_tensor, target_layer, targets, activations,
                                         grads, eigen_smooth)
        return first_component_projection(self.weighted_activations(
            input_tensor, target_layer, targets, np.asarray(activations), grads))


class GradCAM(TargetLayerGraph, FirstComponentSmoothing, pytorch_grad_cam.GradCAM):
    """grad-cam's GradCAM; the backward pass ends at the target layers."""


class GradCAMPlusPlus(TargetLayerGraph, FirstComponentSmoothing, pytorch_grad_cam.GradCAMPlusPlus):
    """grad-cam's GradCAM++; the backward pass ends at the target layers."""


class XGradCAM(TargetLayerGraph, FirstComponentSmoothing, pytorch_grad_cam.XGradCAM):
    """grad-cam's XGradCAM; the backward pass ends at the target layers."""


class LayerCAM(TargetLayerGraph, FirstComponentSmoothing, pytorch_grad_cam.LayerCAM):
    """grad-cam's LayerCAM; the backward pass ends at the target layers."""

    def weighted_activations(self, input_tensor, target_layer, targets, activations, grads):
        return np.maximum(grads, 0) * activations  # LayerCAM's weights are per pixel


class HiResCAM(TargetLayerGraph, pytorch_grad_cam.HiResCAM):
    """grad-cam's HiResCAM; the backward pass ends at the target layers."""


class GradCAMElementWise(TargetLayerGraph, pytorch_grad_cam.GradCAMElementWise):
    """grad-cam's GradCAMElementWise; the backward pass ends at the target layers."""


class EigenGradCAM(TargetLayerGraph, _EigenGradCAM):
    """mmcam's EigenGradCAM (mmcam's projection); the backward pass ends at the target layers."""


#: The gradient methods of this module, registered under grad-cam's names.
NATIVE_GRADIENT_METHODS = (GradCAM, GradCAMPlusPlus, XGradCAM, LayerCAM, HiResCAM,
                           GradCAMElementWise, EigenGradCAM)
