"""ShapleyCAM that also works on transformer tokens."""
from __future__ import annotations

import numpy as np
import pytorch_grad_cam

from mmcam.cams.eigen import first_component_projection


class ShapleyCAM(pytorch_grad_cam.ShapleyCAM):
    """grad-cam's ShapleyCAM; channel weights ``mean(grad - hvp / 2)`` over the map.

    It keeps the layer's raw outputs in the graph (``detach=False``), because its weights take a
    Hessian-vector product through them. grad-cam then hands those raw outputs, not their grid,
    to the weighting step, which fails on a ViT's (B, L, C) tokens ("Invalid activation shape").
    Here the weights are grad-cam's own, and the activations are laid out on the grid (the
    ``reshape_transform``) before they are weighted; on (B, C, H, W) maps nothing changes.
    """

    def get_cam_image(self, input_tensor, target_layer, targets, activations, grads,
                      eigen_smooth: bool = False) -> np.ndarray:
        reshape = self.activations_and_grads.reshape_transform
        if reshape is None or activations.dim() != 3:
            return super().get_cam_image(input_tensor, target_layer, targets, activations,
                                         grads, eigen_smooth)
        weights = self.get_cam_weights(input_tensor, target_layer, targets, activations, grads)
        weighted = weights[:, :, None, None] * reshape(activations).detach().cpu().numpy()
        return first_component_projection(weighted) if eigen_smooth else weighted.sum(axis=1)
