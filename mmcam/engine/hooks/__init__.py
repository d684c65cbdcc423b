from .base import ExplainHook, model_state_restored
from .boxam_hook import BoxAMVisualizationHook
from .cam_hook import CAMVisualizationHook
from .featmap_hook import FeatMapVisualizationHook

__all__ = ['ExplainHook', 'model_state_restored', 'BoxAMVisualizationHook',
           'CAMVisualizationHook', 'FeatMapVisualizationHook']
