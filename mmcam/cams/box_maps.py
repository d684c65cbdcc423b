"""Per-box and per-image maps -> what is shown: finite, normalised inside each box, combined."""
from __future__ import annotations

import warnings

import numpy as np
from pytorch_grad_cam.utils.image import scale_cam_image

from mmcam.utils.errors import InputError

COMBINE_MODES = ('max', 'sum')


def finite_maps(maps: np.ndarray, what: str) -> np.ndarray:
    """``maps`` with NaN and inf set to 0 (drawn flat, never a NaN picture), said once."""
    if np.isfinite(maps).all():
        return maps
    warnings.warn(f'{what} has NaN or infinite values (the model produced non-finite '
                  'activations or gradients there); they are drawn as 0. Check the checkpoint '
                  'and the input, or try another --target-layers.')
    return np.nan_to_num(maps, nan=0.0, posinf=0.0, neginf=0.0)


def normalise_in_boxes(box_maps: np.ndarray, bboxes: np.ndarray) -> np.ndarray:
    """Rescale each box's map to [0, 1] inside its own box and zero it outside (as mmyolo)."""
    out = np.zeros_like(box_maps, dtype=np.float32)
    h, w = box_maps.shape[-2:]
    for i, (x1, y1, x2, y2) in enumerate(np.asarray(bboxes)):
        x1, y1 = max(int(np.floor(x1)), 0), max(int(np.floor(y1)), 0)
        x2, y2 = min(int(np.ceil(x2)), w), min(int(np.ceil(y2)), h)
        if x2 > x1 and y2 > y1:
            out[i, y1:y2, x1:x2] = scale_cam_image([box_maps[i, y1:y2, x1:x2]])[0]
    return out


def combine_maps(box_maps: np.ndarray, mode: str = 'max') -> np.ndarray:
    """One picture-wide map from per-box maps: their maximum, or their sum rescaled to [0, 1]."""
    if mode not in COMBINE_MODES:
        raise InputError(f'--combine {mode!r} is unknown; expected one of {COMBINE_MODES}.')
    if len(box_maps) == 0:
        return np.zeros(box_maps.shape[-2:], np.float32)
    if mode == 'max':
        return box_maps.max(axis=0).astype(np.float32)
    total = box_maps.sum(axis=0)
    return (total / max(float(total.max()), 1e-12)).astype(np.float32)
