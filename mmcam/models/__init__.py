"""Adapters: OpenMMLab models -> plain modules whose outputs are the scores to explain."""
from .classifier import ClassifierLogits

__all__ = ['ClassifierLogits']
