from .base import ExplainHook, model_state_restored
from .cam_hook import CAMVisualizationHook
from .featmap_hook import FeatMapVisualizationHook

__all__ = ['ExplainHook', 'model_state_restored', 'CAMVisualizationHook',
           'FeatMapVisualizationHook']
