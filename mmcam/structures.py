"""The data the stages share: an image ready for the model, detections, and results.

One low module that imports none of the stages (apis, models, cams, visualization), so every
stage can use these types without importing another stage.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Dict, List, Optional, Sequence, Union

import numpy as np

if TYPE_CHECKING:  # annotations only
    import torch

    from mmcam.geometry import InputGeometry

#: An image file path or a BGR uint8 array.
ImageLike = Union[str, np.ndarray]


@dataclass
class Sample:
    """One image after the test pipeline and the model's data_preprocessor."""
    inputs: 'torch.Tensor'        # (1, 3, H, W), normalised, on the model's device
    data_sample: object           # DataSample / DetDataSample with the pipeline's metainfo
    geometry: 'InputGeometry'     # network-input pixels -> original-image pixels
    image: np.ndarray             # the original image, RGB uint8 (H, W, 3)
    path: Optional[str] = None


@dataclass
class Detections:
    """The kept detections of one image, sorted by score, and where each one came from."""
    bboxes: np.ndarray        # (N, 4) x1, y1, x2, y2 in original-image pixels
    labels: np.ndarray        # (N,) class indices
    scores: np.ndarray        # (N,) confidences as the detector reports them
    origin: np.ndarray        # (N,) where each came from: prior (all levels), RoI or query index
    level: np.ndarray         # (N,) pyramid level of that prior (-1: not a prior)
    cell_xy: np.ndarray       # (N, 2) centre of the prior's grid cell (or the RoI's), input pixels
    origin_boxes: Optional[np.ndarray] = None  # (N, 4) the RoIs they came from (two-stage)

    def __len__(self) -> int:
        return len(self.labels)

    def names(self, classes: Sequence[str]) -> List[str]:
        """Class names of the detections (the index when the class list is too short)."""
        return [classes[i] if 0 <= i < len(classes) else str(i) for i in self.labels.tolist()]


@dataclass
class BoxAMResult:
    """Box AM of one image, all maps float32 in [0, 1] on original-image pixels."""
    sample: Sample
    detections: Detections
    box_maps: np.ndarray      # (N, H, W), one map per kept box, in score order
    combined: np.ndarray      # (H, W); zeros when nothing was detected
    seen_mask: np.ndarray     # (H, W) bool, pixels the network saw (not cropped away)

    @property
    def image(self) -> np.ndarray:
        return self.sample.image


@dataclass
class FeatMapResult:
    """Feature maps of one image."""
    sample: Sample
    levels: List[tuple]                        # (title, (C, h, w) tensor) per feature map
    boxes: Optional[np.ndarray] = None         # detections to draw, original-image pixels
    box_labels: Optional[List[str]] = None     # '<class> <score>' per box

    @property
    def image(self) -> np.ndarray:
        return self.sample.image


@dataclass
class CAMMap:
    """One activation map: one method, one category, one image."""
    method: str                  # grad-cam class name, e.g. 'GradCAM'
    category: int
    class_name: str
    score: float                 # the model's probability for ``category``
    cam: np.ndarray              # float32 (H, W) on the original image, in [0, 1]
    cam_input: np.ndarray        # float32 (h, w) on the network input, in [0, 1]


@dataclass
class CAMResult:
    """Everything computed for one image."""
    path: Optional[str]
    image: np.ndarray            # original RGB uint8
    input_image: np.ndarray      # the network input, de-normalised, RGB uint8
    geometry: 'InputGeometry'
    pred_label: int
    pred_score: float
    pred_class: str
    scores: np.ndarray           # (num_classes,) probabilities
    maps: List[CAMMap] = field(default_factory=list)
    #: category -> guided backprop gradients (h, w, 3 RGB) float32 on the network input
    guided: Dict[int, np.ndarray] = field(default_factory=dict)

    @property
    def seen_mask(self) -> np.ndarray:
        """Original pixels the network saw (the rest was cropped away)."""
        return self.geometry.seen_mask()


@dataclass
class SkippedImage:
    """An image that could not be explained, and why (one line)."""
    path: str
    reason: str
