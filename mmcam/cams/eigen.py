"""EigenCAM and EigenGradCAM: the first principal component from a small eigenproblem.

grad-cam projects the (h*w, C) activations on their first principal component through
``np.linalg.svd(..., full_matrices=True)``, which also builds the full (h*w) x (h*w) matrix U
that the projection never reads: on an 80 x 80 detector level that is a 6400 x 6400 matrix and
seconds per image. The component is also the top eigenvector of the centred activations' C x C
Gram matrix (or, when there are fewer pixels than channels, of the (h*w) x (h*w) one), which
``np.linalg.eigh`` finds in milliseconds. NaN handling, centring and the projection are
grad-cam's.

A principal component has no sign of its own, and grad-cam's is whatever LAPACK's SVD returns,
so after the ReLU its map is sometimes the negative half of the projection. mmcam fixes the sign:
the component points the way the channels grow on average (its entries sum to >= 0), so the map
is high where the activations are above their mean. The projection equals grad-cam's up to
that sign.
"""
from __future__ import annotations

import numpy as np
import pytorch_grad_cam


def first_component_projection(activation_batch: np.ndarray) -> np.ndarray:
    """(B, C, H, W) -> (B, H, W): each map projected on its first principal component, signed
    so that the component's entries sum to >= 0."""
    batch = np.array(activation_batch, dtype=np.float64, copy=True)
    batch[np.isnan(batch)] = 0
    projections = []
    for activations in batch:
        rows = activations.reshape(activations.shape[0], -1).T  # (h*w, C)
        rows = rows - rows.mean(axis=0)
        if rows.shape[0] >= rows.shape[1]:  # more pixels than channels: the C x C problem
            _, vectors = np.linalg.eigh(rows.T @ rows)
            projection = rows @ vectors[:, -1]
        else:  # the (h*w) x (h*w) problem: projection = sigma * u
            values, vectors = np.linalg.eigh(rows @ rows.T)
            projection = vectors[:, -1] * np.sqrt(max(values[-1], 0.0))
        # rows.T @ projection is the component times its eigenvalue (>= 0): its sign.
        if (rows.T @ projection).sum() < 0:
            projection = -projection
        projections.append(projection.reshape(activations.shape[1:]))
    return np.float32(projections)


class EigenCAM(pytorch_grad_cam.EigenCAM):
    """grad-cam's EigenCAM (the activations' first principal component), signed."""

    def get_cam_image(self, input_tensor, target_layer, target_category, activations, grads,
                      eigen_smooth: bool = False) -> np.ndarray:
        return first_component_projection(activations)


class EigenGradCAM(pytorch_grad_cam.EigenGradCAM):
    """grad-cam's EigenGradCAM (first principal component of gradients x activations),
    signed."""

    def get_cam_image(self, input_tensor, target_layer, target_category, activations, grads,
                      eigen_smooth: bool = False) -> np.ndarray:
        return first_component_projection(grads * activations)
