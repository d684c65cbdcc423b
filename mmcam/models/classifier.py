"""Adapter: an mmpretrain classifier -> a plain ``nn.Module`` that maps inputs to class logits.

grad-cam calls ``model(input_tensor)`` and expects ``(B, num_classes)`` scores back; mmpretrain
classifiers take ``mode=`` and data samples instead. This wrapper is the only place that knows
the difference.
"""
from __future__ import annotations

import torch
from torch import nn

from mmcam.utils.errors import InputError


class ClassifierLogits(nn.Module):
    """``inputs (B, 3, H, W) -> logits (B, num_classes)`` for an mmpretrain ImageClassifier.

    The classifier's own modules are reachable as ``self.classifier``, so target layers are
    looked up on the classifier and hooked as they are.
    """

    def __init__(self, classifier: nn.Module) -> None:
        super().__init__()
        if not (hasattr(classifier, 'extract_feat') and getattr(classifier, 'head', None)):
            raise InputError(
                f'{type(classifier).__name__} is not an mmpretrain image classifier with a '
                'head; expected a config whose model is an ImageClassifier (type='
                "'ImageClassifier').")
        self.classifier = classifier

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        logits = self.classifier(inputs, mode='tensor')
        if isinstance(logits, (tuple, list)):  # some heads return (cls, dist) pairs
            logits = sum(logits) / len(logits)
        return logits

    @property
    def multi_label(self) -> bool:
        """Multi-label heads score classes independently (sigmoid, not softmax)."""
        return 'MultiLabel' in type(self.classifier.head).__name__

    def scores(self, logits: torch.Tensor) -> torch.Tensor:
        """The probabilities the model itself would report for these logits."""
        return torch.sigmoid(logits) if self.multi_label else torch.softmax(logits, dim=-1)
