"""A localisation check for CAMs: does the map's peak fall inside the object?

Held-out digit scenes (:mod:`mmcam.datasets.digit_scenes`, test split: digits and photographs
never seen in training) have exactly one digit with a known box, so "peak inside the box" is a
simple, honest measure of whether a map points at the evidence.
"""
from __future__ import annotations

from typing import Dict, List, Sequence, Tuple

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
    scenes = [gen.classification_scene(size) for _ in range(count)]
    (per_scene, ) = scene_hits(inferencer, scenes, [method], margins, **cam_options).values()
    return [sum(flags[i] for flags in per_scene) for i in range(len(margins))], count


def scene_hits(inferencer, scenes: Sequence, methods: Sequence[str],
               margins: Sequence[float] = (0.0, ), **cam_options) -> Dict[str, List[List[bool]]]:
    """Per method (the maps' method names), per single-digit scene: whether the map for the
    true class peaks in the digit box, one flag per margin. All methods of a scene come from
    one :class:`mmcam.apis.CAMInferencer` call; ``cam_options`` go to it."""
    hits: Dict[str, List[List[bool]]] = {}
    for scene in scenes:
        bgr = np.ascontiguousarray(scene.image[..., ::-1])  # scenes are RGB; mmcam reads BGR
        result = inferencer([bgr], methods=list(methods), target_category=[int(scene.labels[0])],
                            **cam_options)[0]
        for m in result.maps:
            hits.setdefault(m.method, []).append(
                [peak_in_box(m.cam, scene.boxes[0], margin) for margin in margins])
    return hits
