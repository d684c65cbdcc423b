from .base import ExplainHook, model_state_restored
from .cam_hook import CAMVisualizationHook

__all__ = ['ExplainHook', 'model_state_restored', 'CAMVisualizationHook']
