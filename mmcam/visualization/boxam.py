"""Drawing box-level activation maps: the combined picture, the per-box grid, the "nothing
detected" note. Everything is drawn through an mmengine Visualizer (a :class:`CAMVisualizer`),
so it looks like the rest of mmcam's pictures and can go to any visualizer backend.
"""
from __future__ import annotations

from typing import List, Optional, Sequence

import numpy as np
from matplotlib import colormaps

from mmcam.visualization.panels import draw_boxes, tile_panels


def class_colors(labels: Sequence[int]) -> List[tuple]:
    """One distinct RGB colour (0-255 ints) per class index, stable across pictures."""
    cmap = colormaps['tab10']
    return [tuple(int(255 * v) for v in cmap(int(i) % 10)[:3]) for i in labels]


def _font_size(image: np.ndarray) -> int:
    return int(np.clip(min(image.shape[:2]) / 28, 7, 18))


def draw_boxam(visualizer, image: np.ndarray, cam: np.ndarray, bboxes: np.ndarray,
               labels: Sequence[int], titles: Sequence[str],
               seen_mask: Optional[np.ndarray] = None, alpha: float = 0.5) -> np.ndarray:
    """The combined map over the image with every explained box and its title."""
    drawn = visualizer.draw_cam(image, cam, alpha=alpha, seen_mask=seen_mask)
    if len(bboxes):  # on the array: no canvas rendering of a possibly huge image
        drawn = draw_boxes(drawn, bboxes, titles, class_colors(labels))
        visualizer.set_image(drawn)
    return drawn


def draw_box_grid(visualizer, image: np.ndarray, box_maps: np.ndarray, bboxes: np.ndarray,
                  labels: Sequence[int], titles: Sequence[str],
                  seen_mask: Optional[np.ndarray] = None, alpha: float = 0.5,
                  ncols: int = 4) -> np.ndarray:
    """One panel per box (its own map and its box), titled, tiled ``ncols`` to a row."""
    panels = []
    for box_map, box, label, title in zip(box_maps, bboxes, labels, titles):
        drawn = visualizer.draw_cam(image, box_map, alpha=alpha, seen_mask=seen_mask)
        panels.append((title, draw_boxes(drawn, np.asarray(box, np.float64)[None], None,
                                         class_colors([label]))))
    if not panels:
        return image.copy()
    grid = tile_panels([panels[i:i + ncols] for i in range(0, len(panels), ncols)],
                       min_width=min(224, image.shape[1]))
    visualizer.set_image(grid)
    return grid


def draw_note(visualizer, image: np.ndarray, text: str) -> np.ndarray:
    """The plain image with a one-line note on it (e.g. why no map was drawn)."""
    visualizer.set_image(image)
    visualizer.draw_texts(text, np.array([4, 4]), font_sizes=_font_size(image), colors='white',
                          bboxes=dict(facecolor='black', alpha=0.7, pad=0.6, edgecolor='none'))
    return visualizer.get_image()
