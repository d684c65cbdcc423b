"""EigenCAM and EigenGradCAM with a reduced SVD.

grad-cam projects the activations on their first principal component through
``np.linalg.svd(..., full_matrices=True)``, which also builds the full (h*w) x (h*w) matrix U
that the projection never reads: on an 80 x 80 detector level that is a 6400 x 6400 matrix and
seconds per image. The first right-singular vector is the same with ``full_matrices=False``;
everything else (NaN handling, centring, the projection) is grad-cam's.
"""
from __future__ import annotations

import numpy as np
import pytorch_grad_cam


def first_component_projection(activation_batch: np.ndarray) -> np.ndarray:
    """(B, C, H, W) -> (B, H, W): each map projected on its first principal component."""
    batch = np.array(activation_batch, copy=True)
    batch[np.isnan(batch)] = 0
    projections = []
    for activations in batch:
        rows = activations.reshape(activations.shape[0], -1).T  # (h*w, C)
        rows = rows - rows.mean(axis=0)
        _, _, vt = np.linalg.svd(rows, full_matrices=False)
        projections.append((rows @ vt[0]).reshape(activations.shape[1:]))
    return np.float32(projections)


class EigenCAM(pytorch_grad_cam.EigenCAM):
    """grad-cam's EigenCAM (the activations' first principal component), reduced SVD."""

    def get_cam_image(self, input_tensor, target_layer, target_category, activations, grads,
                      eigen_smooth: bool = False) -> np.ndarray:
        return first_component_projection(activations)


class EigenGradCAM(pytorch_grad_cam.EigenGradCAM):
    """grad-cam's EigenGradCAM (first principal component of gradients x activations),
    reduced SVD."""

    def get_cam_image(self, input_tensor, target_layer, target_category, activations, grads,
                      eigen_smooth: bool = False) -> np.ndarray:
        return first_component_projection(grads * activations)
