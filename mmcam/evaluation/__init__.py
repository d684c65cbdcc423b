"""Explanation quality over a dataset: the metric the Runner runs, and the report."""
from .metric import METRIC_GROUPS, CAMQualityMetric, summarise
from .report import write_outputs

__all__ = ['CAMQualityMetric', 'METRIC_GROUPS', 'summarise', 'write_outputs']
