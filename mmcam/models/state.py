"""Explaining must leave a model as it found it: mode, gradients and ``requires_grad``."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
from torch import nn


@contextmanager
def model_state_restored(model: nn.Module) -> Iterator[None]:
    """Run with gradients on and the model in eval mode; put everything back afterwards
    (each module's own mode: a model may train with some layers frozen in eval mode)."""
    modes = [(m, m.training) for m in model.modules()]
    params = [(p, p.requires_grad, p.grad) for p in model.parameters()]
    try:
        if any(training for _, training in modes):  # eval() walks every module: skip it when
            model.eval()                            # nothing is training (a validation loop)
        with torch.enable_grad():
            yield
    finally:
        for p, requires_grad, grad in params:
            p.requires_grad_(requires_grad)
            p.grad = grad
        for module, training in modes:
            module.training = training
