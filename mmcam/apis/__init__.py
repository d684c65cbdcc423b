"""The three explainers and what they share.

Each builds from a config and checkpoint (or a LoadedModel, or a Runner's model with its scope),
``explain(image or sample)`` returns a result dataclass, and ``draw(result)`` a picture:

* :class:`CAMInferencer`: class activation maps of a classifier -> :class:`CAMResult`;
* :class:`FeatMapInferencer`: feature maps of any layers -> :class:`FeatMapResult`;
* :class:`BoxAMInferencer`: one map per detection of a detector -> :class:`BoxAMResult`.
"""
from mmcam.structures import (BoxAMResult, CAMMap, CAMResult, FeatMapResult, Sample,
                              SkippedImage)
from mmcam.utils.errors import InputError
from mmcam.utils.modules import find_module

from .boxam import BoxAMInferencer
from .cam_inferencer import CAMInferencer
from .featmap import FeatMapInferencer
from .model_loader import LoadedModel, expand_images, read_image

__all__ = ['CAMInferencer', 'FeatMapInferencer', 'BoxAMInferencer', 'CAMResult', 'CAMMap',
           'FeatMapResult', 'BoxAMResult', 'SkippedImage', 'Sample', 'LoadedModel',
           'InputError', 'find_module', 'read_image', 'expand_images']
