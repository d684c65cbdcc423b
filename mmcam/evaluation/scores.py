"""The per-map figures of the dataset evaluation, in plain numpy.

Every function takes maps on original-image pixels and boxes as ``x1, y1, x2, y2`` in the
same pixels (end-exclusive, as the digit scenes and COCO's ``x, y, w, h`` give them).
"""
from __future__ import annotations

import math
from typing import Dict, List, Sequence, Tuple

import numpy as np

#: The pointing game's usual tolerance (Zhang et al. 2016: 15 px).
POINTING_TOLERANCE = 15.0


def peak(cam: np.ndarray) -> Tuple[int, int]:
    """(x, y) of the map's maximum (the first one in row order on ties)."""
    y, x = np.unravel_index(int(np.argmax(cam)), cam.shape)
    return int(x), int(y)


def point_in_box(xy: Tuple[int, int], box: Sequence[float], tolerance: float = 0.0) -> bool:
    """Whether pixel ``xy``'s centre lies in ``box`` grown by ``tolerance`` pixels.

    Pixel (x, y) covers [x, x + 1): its centre is x + 0.5. For boxes on whole pixels this is
    ``x1 - t <= x < x2 + t``, the count of the old localisation check.
    """
    x, y = xy[0] + 0.5, xy[1] + 0.5
    x1, y1, x2, y2 = (float(v) for v in box[:4])
    return (x1 - tolerance <= x <= x2 + tolerance) and (y1 - tolerance <= y <= y2 + tolerance)


def pointing_hit(cam: np.ndarray, boxes: Sequence[Sequence[float]],
                 tolerance: float = 0.0) -> bool:
    """Pointing game: the map's peak falls in one of the boxes (+- tolerance)."""
    xy = peak(cam)
    return any(point_in_box(xy, box, tolerance) for box in boxes)


def box_mask(boxes: Sequence[Sequence[float]], hw: Sequence[int]) -> np.ndarray:
    """Boolean (H, W) union of boxes, every pixel a box touches included."""
    mask = np.zeros(tuple(hw), bool)
    for x1, y1, x2, y2 in np.asarray(boxes, np.float64).reshape(-1, 4):
        mask[max(int(np.floor(y1)), 0):max(int(np.ceil(y2)), 0),
             max(int(np.floor(x1)), 0):max(int(np.ceil(x2)), 0)] = True
    return mask


def energy_ratio(cam: np.ndarray, boxes: Sequence[Sequence[float]]) -> float:
    """Share of the map's mass inside the boxes over the share of the image they cover.

    A uniform map scores 1.0, higher is better; NaN for an all-zero map or no box area.
    """
    mask = box_mask(boxes, cam.shape)
    total = float(cam.sum())
    if total <= 0 or not mask.any():
        return float('nan')
    return float(cam[mask].sum()) / total / float(mask.mean())


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, M) intersection over union of two sets of xyxy boxes."""
    a, b = np.asarray(a, np.float64).reshape(-1, 4), np.asarray(b, np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(-1)
    area_a = np.clip(a[:, 2:] - a[:, :2], 0, None).prod(-1)
    area_b = np.clip(b[:, 2:] - b[:, :2], 0, None).prod(-1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def match_detections(det_boxes: np.ndarray, det_labels: np.ndarray, gt_boxes: np.ndarray,
                     gt_labels: np.ndarray, iou_thr: float = 0.5) -> List[int]:
    """For each detection (in score order), the index of its ground-truth box, or -1.

    Greedy, as COCO matches: a detection takes the unmatched box of its class with the
    highest IoU of at least ``iou_thr``.
    """
    if len(det_boxes) == 0:
        return []
    if len(gt_boxes) == 0:
        return [-1] * len(det_boxes)
    overlaps = iou(det_boxes, gt_boxes)
    taken = np.zeros(len(gt_boxes), bool)
    matched = []
    for i in range(len(det_boxes)):
        ok = (~taken) & (np.asarray(gt_labels) == det_labels[i]) & (overlaps[i] >= iou_thr)
        if not ok.any():
            matched.append(-1)
            continue
        j = int(np.argmax(np.where(ok, overlaps[i], -1.0)))
        taken[j] = True
        matched.append(j)
    return matched


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of two maps (ties get their average rank); NaN if either
    map is constant (a flat map has no order to compare)."""
    from scipy.stats import rankdata
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    if a.size < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float('nan')
    ra, rb = rankdata(a), rankdata(b)
    return float(np.corrcoef(ra, rb)[0, 1])


def mean_ci(values: Sequence[float], level: float = 0.95) -> Dict[str, float]:
    """Mean and a ``level`` confidence interval (Student's t on the values; NaNs left out).

    For hit rates (values 0/1) this is the usual normal-approximation interval; with fewer
    than two values the interval is NaN.
    """
    from scipy.stats import t
    x = np.asarray([v for v in values if v is not None and not math.isnan(float(v))],
                   np.float64)
    n = len(x)
    if n == 0:
        return dict(mean=float('nan'), low=float('nan'), high=float('nan'), n=0)
    mean = float(x.mean())
    if n < 2:
        return dict(mean=mean, low=float('nan'), high=float('nan'), n=n)
    half = float(t.ppf(0.5 + level / 2, n - 1) * x.std(ddof=1) / math.sqrt(n))
    return dict(mean=mean, low=mean - half, high=mean + half, n=n)
