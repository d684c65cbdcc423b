"""Adapters: OpenMMLab models -> plain modules whose outputs are the scores to explain."""
from .classifier import ClassifierLogits
from .conv_stem import ConvStem

__all__ = ['ClassifierLogits', 'ConvStem']
