"""Detector adapters: one family, one file, behind the interface of :mod:`.base`."""
from .base import ADAPTERS, SCORE_KINDS, DetectorAdapter, build_adapter, register_adapter
from .dense import DenseHeadAdapter, level_layers
from .yolo import YOLOAdapter

__all__ = ['ADAPTERS', 'SCORE_KINDS', 'DetectorAdapter', 'build_adapter', 'register_adapter',
           'DenseHeadAdapter', 'YOLOAdapter', 'level_layers']
