"""Capture what chosen layers output during a forward pass.

Used by the feature-map tool: the model runs its normal ``predict`` (so detections come out of
the same pass) while forward hooks copy the outputs of the target layers. The hooks are removed
when the ``with`` block ends, also when the forward pass raised, so a model is never left with
stray hooks attached.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Dict, Iterator, Mapping

import torch
from torch import nn


def _detach(output: Any) -> Any:
    """Detach tensors inside (nested) tuples, lists and dicts; keep the structure."""
    if torch.is_tensor(output):
        return output.detach()
    if isinstance(output, list):
        return [_detach(o) for o in output]
    if isinstance(output, tuple):
        return tuple(_detach(o) for o in output)
    if isinstance(output, Mapping):
        return {k: _detach(v) for k, v in output.items()}
    return output


@contextmanager
def capture_outputs(modules: Mapping[str, nn.Module], detach: bool = True
                    ) -> Iterator[Dict[str, Any]]:
    """Record each named module's output while the block runs.

    Args:
        modules: ``{name: module}``; the names are the keys of the yielded dict.
        detach: keep detached tensors (``False``: the outputs themselves, with their graph).

    Yields:
        A dict that fills up as the model runs: ``name -> output`` (tensors, or the
        tuple/list of them that the module returned). A module called several times in one
        pass keeps its last output.

    Example::

        with capture_outputs({'neck': model.neck}) as outputs, torch.no_grad():
            model.predict(inputs, data_samples)
        levels = outputs['neck']      # a tuple of (B, C, H, W) maps for a pyramid neck
    """
    outputs: Dict[str, Any] = {}
    handles = []

    def make_hook(name: str):
        def hook(module: nn.Module, args: Any, output: Any) -> None:
            outputs[name] = _detach(output) if detach else output
        return hook

    try:
        for name, module in modules.items():
            handles.append(module.register_forward_hook(make_hook(name)))
        yield outputs
    finally:
        for handle in handles:
            handle.remove()
