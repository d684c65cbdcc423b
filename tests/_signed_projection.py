"""grad-cam's own projection, with mmcam's sign: for comparing EigenCAM-style maps.

grad-cam's ``get_2d_projection`` keeps whatever sign LAPACK's SVD gives the first component;
mmcam's points the component the way the channels grow on average. Inside
:func:`grad_cam_signed_like_mmcam` grad-cam's classes still run their own full SVD, but flip
each projection whose component sums to < 0, so their maps can be compared with mmcam's.
"""
import sys
from contextlib import ExitStack, contextmanager
from unittest import mock

import numpy as np
import pytorch_grad_cam  # noqa: F401  (imports every method's module)
from pytorch_grad_cam.utils import svd_on_activations


def component_sum(activations: np.ndarray, projection: np.ndarray) -> float:
    """The sign of the component that ``projection`` (H, W) was made from (C, H, W)."""
    rows = np.nan_to_num(activations.astype(np.float64), nan=0.0)
    rows = rows.reshape(rows.shape[0], -1).T
    rows = rows - rows.mean(axis=0)
    return float((rows.T @ projection.astype(np.float64).ravel()).sum())


def signed_grad_cam_projection(batch: np.ndarray) -> np.ndarray:
    """grad-cam's projection of each (C, H, W) map, flipped where its component sums to < 0."""
    batch = np.array(batch, copy=True)
    out = svd_on_activations.get_2d_projection(batch.copy())
    for i, activations in enumerate(batch):
        if component_sum(activations, out[i]) < 0:
            out[i] = -out[i]
    return out


@contextmanager
def grad_cam_signed_like_mmcam():
    with ExitStack() as stack:
        for name, module in list(sys.modules.items()):
            if (name.startswith('pytorch_grad_cam.') and module is not svd_on_activations
                    and hasattr(module, 'get_2d_projection')):
                stack.enter_context(mock.patch.object(module, 'get_2d_projection',
                                                      signed_grad_cam_projection))
        yield
