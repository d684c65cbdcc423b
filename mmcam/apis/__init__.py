from .model_loader import InputError, LoadedModel, Sample, find_module, read_image
from .cam_inferencer import CAMInferencer, CAMMap, CAMResult, SkippedImage  # noqa: E402

__all__ = ['CAMInferencer', 'CAMMap', 'CAMResult', 'SkippedImage', 'InputError', 'LoadedModel',
           'Sample', 'find_module', 'read_image']
