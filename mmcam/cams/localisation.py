"""A localisation check for CAMs: does the map's peak fall inside the object?

Held-out digit scenes (:mod:`mmcam.datasets.digit_scenes`, test split: digits and photographs
never seen in training) have exactly one digit with a known box, so "peak inside the box" is a
simple, honest measure of whether a map points at the evidence.
"""
from __future__ import annotations

from typing import List, Sequence, Tuple

import numpy as np

from mmcam.datasets.digit_scenes import DigitSceneGenerator


def peak_in_box(cam: np.ndarray, box, margin: float = 0.0) -> bool:
    """True if the map's maximum lies in ``box`` (x1, y1, x2, y2, end-exclusive) +- margin."""
    y, x = np.unravel_index(int(np.argmax(cam)), cam.shape)
    x1, y1, x2, y2 = box
    return x1 - margin <= x < x2 + margin and y1 - margin <= y < y2 + margin


def localisation_hits(inferencer, method: str = 'GradCAM', count: int = 50, seed: int = 1,
                      size: int = 96, margins: Sequence[float] = (0.0, ),
                      **cam_options) -> Tuple[List[int], int]:
    """([hits per margin], count): scenes whose map for the true class peaks in the digit box.

    A map computed on an h x w layer can place its peak only to about one cell of
    ``input / h`` pixels, so a small ``margin`` around the (tight, ink-only) box separates
    "points at the digit" from "resolved finer than the layer can"; margin 0 is the strict
    count.

    Args:
        inferencer: a :class:`mmcam.apis.CAMInferencer` for a digit classifier.
        method: CAM method name.
        count: number of held-out single-digit scenes.
        seed: scene seed (the digits and photographs come from the test split whatever it is).
        size: scene side in pixels, as the demo classifiers were trained on.
        margins: pixels of tolerance around the box, one count per margin.
        cam_options: passed on to :meth:`CAMInferencer.run` (``eigen_smooth``, ...).
    """
    gen = DigitSceneGenerator('test', seed=seed)
    hits = [0] * len(margins)
    for _ in range(count):
        scene = gen.classification_scene(size)
        label = int(scene.labels[0])
        bgr = np.ascontiguousarray(scene.image[..., ::-1])  # scenes are RGB; mmcam reads BGR
        result = inferencer([bgr], methods=[method], target_category=[label], **cam_options)[0]
        for i, margin in enumerate(margins):
            hits[i] += peak_in_box(result.maps[0].cam, scene.boxes[0], margin)
    return hits, count
