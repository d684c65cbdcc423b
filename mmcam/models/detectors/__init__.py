"""Detector adapters: one family, one file, behind the interface of :mod:`.base`."""
from .base import ADAPTERS, SCORE_KINDS, DetectorAdapter, build_adapter, register_adapter
from .centernet import CenterNetAdapter
from .dense import DenseHeadAdapter, MMDetYOLOXAdapter, YOLOv3Adapter, level_layers
from .detr import QueryAdapter
from .two_stage import TwoStageAdapter
from .yolo import YOLOAdapter

__all__ = ['ADAPTERS', 'SCORE_KINDS', 'DetectorAdapter', 'build_adapter', 'register_adapter',
           'CenterNetAdapter', 'DenseHeadAdapter', 'MMDetYOLOXAdapter', 'QueryAdapter',
           'TwoStageAdapter', 'YOLOAdapter', 'YOLOv3Adapter', 'level_layers']
