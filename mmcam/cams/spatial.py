"""Per-pixel gradient methods: GradCAM and GradCAM++ as box AM defines them (mmyolo, ODAM).

Classification Grad-CAM weights each channel by its gradient averaged over the whole map. For
one detection that average mixes the gradient at the box's own location with everything else
on the level, and the map becomes a map of "where else would this class score high". mmyolo's
box AM (``mmyolo/utils/boxam_utils.py``, ``SpatialBaseCAM``) and ODAM (Zhao et al., ICLR 2023)
keep the gradient at each pixel instead: the map is ``relu(sum_c dS/dA_c * A_c)``, which is
instance-specific because a detection's score has a gradient only around its own prior.
"""
from __future__ import annotations

import numpy as np
from pytorch_grad_cam.base_cam import BaseCAM

from mmcam.cams.eigen import first_component_projection

#: Guards the GradCAM++ alpha against a zero denominator (the value grad-cam uses).
EPS = 1e-6


class SpatialGradCAM(BaseCAM):
    """Weights: the gradient itself, per channel and per pixel (ODAM; mmyolo's box GradCAM)."""

    def __init__(self, model, target_layers, reshape_transform=None) -> None:
        super().__init__(model, target_layers, reshape_transform)

    def spatial_weights(self, activations: np.ndarray, grads: np.ndarray) -> np.ndarray:
        """(B, C, H, W) weights, one per activation."""
        return grads

    def get_cam_image(self, input_tensor, target_layer, targets, activations, grads,
                      eigen_smooth: bool = False) -> np.ndarray:
        weighted = self.spatial_weights(activations, grads) * activations
        return first_component_projection(weighted) if eigen_smooth else weighted.sum(axis=1)


class SpatialGradCAMPlusPlus(SpatialGradCAM):
    """Weights: Grad-CAM++'s alpha times the positive gradient, per pixel (not summed over
    space as classification Grad-CAM++ does)."""

    def spatial_weights(self, activations: np.ndarray, grads: np.ndarray) -> np.ndarray:
        g2 = grads ** 2
        total = activations.sum(axis=(2, 3), keepdims=True)
        alpha = np.where(grads != 0, g2 / (2 * g2 + total * g2 * grads + EPS), 0.0)
        return np.maximum(grads, 0) * alpha
