"""CAMVisualizer: mmengine's Visualizer with activation-map drawing.

The command-line tools and the hooks draw through this one class, so a picture looks the same
whichever way it was made, and goes to whatever backends (local files, TensorBoard, ...) the
visualizer was configured with.
"""
from __future__ import annotations

from typing import Optional, Tuple

import cv2
import numpy as np
from mmengine.dist import master_only
from mmengine.visualization import Visualizer

from mmcam.registry import VISUALIZERS
from mmcam.visualization import boxam as boxam_lib
from mmcam.visualization import featmap as featmap_lib
from mmcam.visualization.panels import grey_unseen


#: Rows blended at a time: a 10000 x 8000 photo is never held as float32 all at once.
_ROWS = 512


def overlay_cam(image: np.ndarray, cam: np.ndarray, alpha: float) -> np.ndarray:
    """grad-cam's ``show_cam_on_image`` (JET colours, blended, rescaled by the maximum) on an
    RGB uint8 image, computed in row blocks: the same picture, with memory bounded by the
    block instead of four float32 copies of the whole image."""
    weight = 1.0 - alpha

    def blend(rows: slice) -> np.ndarray:
        heat = cv2.applyColorMap(np.uint8(255 * cam[rows]), cv2.COLORMAP_JET)
        heat = np.float32(cv2.cvtColor(heat, cv2.COLOR_BGR2RGB)) / 255
        return (1 - weight) * heat + weight * (image[rows].astype(np.float32) / 255.0)

    blocks = [slice(y, y + _ROWS) for y in range(0, image.shape[0], _ROWS)]
    top = max(float(blend(rows).max()) for rows in blocks)
    out = np.empty(image.shape[:2] + (3, ), np.uint8)
    for rows in blocks:
        out[rows] = np.uint8(255 * (blend(rows) / np.float32(top)))
    return out


def cam_picture(image: np.ndarray, cam: np.ndarray, alpha: float = 0.5,
                seen_mask: Optional[np.ndarray] = None) -> np.ndarray:
    """The picture of :meth:`CAMVisualizer.draw_cam`, without making it a visualizer's current
    image: mmengine's ``set_image`` clears a matplotlib figure, which took half the time of a
    validation hook's picture (12 of 27 ms a sample for the demo ResNet)."""
    if cam.shape[:2] != image.shape[:2]:
        raise ValueError(f'The map is {cam.shape[:2]} but the image is {image.shape[:2]}; '
                         'expected the map in original-image pixels (see mmcam.geometry).')
    cam = np.clip(np.nan_to_num(cam.astype(np.float32)), 0.0, 1.0)
    return grey_unseen(overlay_cam(image, cam, alpha), image, seen_mask)


@VISUALIZERS.register_module()
class CAMVisualizer(Visualizer):
    """A Visualizer that overlays class/box activation maps and feature maps on images."""

    def draw_cam(self,
                 image: np.ndarray,
                 cam: np.ndarray,
                 alpha: float = 0.5,
                 seen_mask: Optional[np.ndarray] = None) -> np.ndarray:
        """Overlay a map in [0, 1] (H x W, original-image pixels) on an RGB uint8 image.

        Pixels outside ``seen_mask`` (cropped away by the test pipeline, so the model never
        saw them) are drawn greyed out rather than coloured, so the picture does not claim
        evidence the model could not have used.

        Returns the drawn RGB image, which also becomes the visualizer's current image.
        """
        drawn = cam_picture(image, cam, alpha, seen_mask)
        self.set_image(drawn)
        return drawn

    @staticmethod
    @master_only
    def draw_featmap(featmap,
                     overlaid_image: Optional[np.ndarray] = None,
                     channel_reduction: Optional[str] = 'squeeze_mean',
                     topk: int = 20,
                     arrangement: Tuple[int, int] = (4, 5),
                     resize_shape: Optional[tuple] = None,
                     alpha: float = 0.5,
                     **kwargs) -> np.ndarray:
        """mmengine's ``Visualizer.draw_featmap``, aligned with the image.

        Same arguments and return value (an RGB picture), plus ``geometry=Sample.geometry``
        to undo the test pipeline's resize/letterbox, ``boxes``/``box_labels`` to draw
        detections, and a sequence of maps for pyramid levels. Every one of the top-k maps is
        shown. See :func:`mmcam.visualization.featmap.draw_featmap`.
        """
        return featmap_lib.draw_featmap(featmap, overlaid_image, channel_reduction, topk,
                                        arrangement, resize_shape, alpha, **kwargs)

    def draw_boxam(self,
                   image: np.ndarray,
                   cam: Optional[np.ndarray],
                   bboxes: np.ndarray,
                   labels,
                   titles,
                   seen_mask: Optional[np.ndarray] = None,
                   box_maps: Optional[np.ndarray] = None,
                   alpha: float = 0.5,
                   ncols: int = 4) -> np.ndarray:
        """Box AM: the combined map ``cam`` with every box labelled by its title, or, given
        ``box_maps`` (N x H x W), a grid with one panel per box titled with class and score.

        Maps are in [0, 1] on original-image pixels. See :mod:`mmcam.visualization.boxam`.
        """
        if box_maps is not None:
            return boxam_lib.draw_box_grid(self, image, box_maps, bboxes, labels, titles,
                                           seen_mask, alpha, ncols)
        return boxam_lib.draw_boxam(self, image, cam, bboxes, labels, titles, seen_mask, alpha)
