"""Drawing box-level activation maps: the combined picture, the per-box grid, the "nothing
detected" note. Everything is drawn through an mmengine Visualizer (a :class:`CAMVisualizer`),
so it looks like the rest of mmcam's pictures and can go to any visualizer backend.
"""
from __future__ import annotations

from typing import List, Optional, Sequence

import numpy as np
from matplotlib import colormaps

from mmcam.visualization.panels import tile_panels


def class_colors(labels: Sequence[int]) -> List[tuple]:
    """One distinct RGB colour (0-255 ints) per class index, stable across pictures."""
    cmap = colormaps['tab10']
    return [tuple(int(255 * v) for v in cmap(int(i) % 10)[:3]) for i in labels]


def _font_size(image: np.ndarray) -> int:
    return int(np.clip(min(image.shape[:2]) / 28, 7, 18))


def draw_boxes(visualizer, bboxes: np.ndarray, labels: Sequence[int],
               titles: Sequence[str]) -> None:
    """Boxes coloured by class, each labelled with its title, on the current image."""
    if len(bboxes) == 0:
        return
    bboxes = np.asarray(bboxes, dtype=np.float64).reshape(-1, 4)
    # A detector early in training can return inverted or out-of-image boxes (mmengine's
    # draw_bboxes asserts x1 <= x2): draw them ordered and clipped, never lose the picture.
    h, w = visualizer.get_image().shape[:2]
    bboxes = np.concatenate([np.minimum(bboxes[:, :2], bboxes[:, 2:]),
                             np.maximum(bboxes[:, :2], bboxes[:, 2:])], axis=1)
    bboxes = np.clip(np.nan_to_num(bboxes), 0, [w, h, w, h])
    colors = class_colors(labels)
    visualizer.draw_bboxes(bboxes, edge_colors=colors, line_widths=2, alpha=0.9)
    size = _font_size(visualizer.get_image())
    # Label just above the box, or inside it when the box touches the top edge.
    positions = np.stack([bboxes[:, 0], np.maximum(bboxes[:, 1] - size * 1.4, 0)], axis=1)
    visualizer.draw_texts(list(titles), positions, font_sizes=size, colors='white',
                          bboxes=[dict(facecolor=c_to_mpl(c), alpha=0.75, pad=0.6,
                                       edgecolor='none') for c in colors])


def c_to_mpl(color: tuple) -> tuple:
    """0-255 RGB -> matplotlib's 0-1 RGB."""
    return tuple(v / 255.0 for v in color)


def draw_boxam(visualizer, image: np.ndarray, cam: np.ndarray, bboxes: np.ndarray,
               labels: Sequence[int], titles: Sequence[str],
               seen_mask: Optional[np.ndarray] = None, alpha: float = 0.5) -> np.ndarray:
    """The combined map over the image with every explained box and its title."""
    visualizer.draw_cam(image, cam, alpha=alpha, seen_mask=seen_mask)
    draw_boxes(visualizer, bboxes, labels, titles)
    return visualizer.get_image()


def draw_box_grid(visualizer, image: np.ndarray, box_maps: np.ndarray, bboxes: np.ndarray,
                  labels: Sequence[int], titles: Sequence[str],
                  seen_mask: Optional[np.ndarray] = None, alpha: float = 0.5,
                  ncols: int = 4) -> np.ndarray:
    """One panel per box (its own map and its box), titled, tiled ``ncols`` to a row."""
    panels = []
    for box_map, box, label, title in zip(box_maps, bboxes, labels, titles):
        visualizer.draw_cam(image, box_map, alpha=alpha, seen_mask=seen_mask)
        visualizer.draw_bboxes(np.asarray(box, np.float64)[None],
                               edge_colors=class_colors([label]), line_widths=2, alpha=0.9)
        panels.append((title, visualizer.get_image()))
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
