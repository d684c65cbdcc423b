"""Re-running a model from a layer on: skip everything that was done before it.

Perturbation methods (AblationCAM) run the same image through the model once per batch of
perturbed copies of one layer's output. Everything computed before that layer is the same for
every copy, so :func:`replayed_prefix` records, in one forward pass of the single image, which
modules finished before the layer started and what they returned; while open, those modules
return their recorded output (expanded to the batch, no copy) instead of computing it again.
What is left is the classifier analogue of the detector's neck replay: the layers after the
target, run on large batches.

The rule needs no knowledge of the architecture: a module is skipped when it was called
exactly once and returned before the target layer was called. Modules that enclose the
target layer (the backbone, the stage that holds it) run as usual, and the target layer's own
output is whatever the caller patches in. A replay that does not give the recorded logits back
for the unperturbed layer is not used (the caller falls back to full re-runs).
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Callable, Dict, Iterator, Optional

import torch
from torch import nn


def _expand(value: Any, batch: int, copy: bool) -> Any:
    """A recorded batch-1 output as ``batch`` copies (tensors, tuples and lists): views, or
    real copies for models that write into a module's output in place."""
    if isinstance(value, torch.Tensor):
        view = value.expand(batch, *value.shape[1:])
        # One copy is always a real one: an in-place write into it would change the record.
        return view.clone() if copy or batch == 1 else view
    return type(value)(_expand(v, batch, copy) for v in value)


def _clone(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.clone()
    if isinstance(value, (tuple, list)):
        return type(value)(_clone(v) for v in value)
    return value


def _replayable(value: Any) -> bool:
    if isinstance(value, torch.Tensor):
        return value.dim() > 0 and value.shape[0] == 1
    return isinstance(value, (tuple, list)) and len(value) > 0 and all(
        _replayable(v) for v in value)


class PrefixReplay:
    """What :func:`replayed_prefix` yields.

    Attributes:
        activation: the target layer's output for the single image.
        logits: the model's output for the single image.
        active: whether modules before the target are skipped (else nothing is).
    """

    def __init__(self, model: nn.Module, target: nn.Module) -> None:
        self.model, self.target = model, target
        self.activation: Optional[torch.Tensor] = None
        self.logits: Optional[torch.Tensor] = None
        self.active = False
        self._skipped: Dict[nn.Module, Any] = {}
        self._batch = 1
        self._copy = False

    def run(self, activations: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
        """The model's output when the target layer outputs ``activations`` (a batch).

        ``inputs`` is the single image; it is expanded to the batch (it is only read when the
        replay is not active).
        """
        self._batch = activations.shape[0]
        self.target.forward = lambda *args, **kwargs: activations
        try:
            return self.model(inputs.expand(self._batch, *inputs.shape[1:]))
        finally:
            del self.target.forward

    def _patch(self) -> None:
        for module, output in self._skipped.items():
            module.forward = (lambda out: lambda *a, **k: _expand(out, self._batch, self._copy))(
                output)

    def _unpatch(self) -> None:
        for module in self._skipped:
            if 'forward' in vars(module):
                del module.forward


@contextmanager
def replayed_prefix(model: nn.Module, target: nn.Module, inputs: torch.Tensor,
                    check: Callable[[torch.Tensor, torch.Tensor], bool]) -> Iterator[PrefixReplay]:
    """Record one forward pass of ``inputs`` (one image); while open, :meth:`PrefixReplay.run`
    skips the modules that finished before ``target`` was called.

    ``check(replayed, recorded)`` compares the logits of a replay of the unperturbed layer with
    the recorded ones; when it fails the replay is left off (``active`` is False).
    """
    replay = PrefixReplay(model, target)
    clock = [0]
    started: Dict[nn.Module, int] = {}
    calls: Dict[nn.Module, int] = {}
    finished: Dict[nn.Module, int] = {}
    outputs: Dict[nn.Module, Any] = {}
    target_start = [None]

    def pre(module, args):
        clock[0] += 1
        started.setdefault(module, clock[0])
        calls[module] = calls.get(module, 0) + 1
        if module is target and target_start[0] is None:
            target_start[0] = clock[0]

    def post(module, args, output):
        clock[0] += 1
        finished[module] = clock[0]
        if module is target and replay.activation is None:
            replay.activation = _clone(output)
        if target_start[0] is None:
            # A copy: a later in-place op (ReLU(inplace=True), ``out += identity``) would
            # change what was recorded.
            outputs[module] = _clone(output)

    modules = [m for m in model.modules() if m is not model]
    handles = [h for m in modules for h in (m.register_forward_pre_hook(pre),
                                            m.register_forward_hook(post))]
    try:
        with torch.no_grad():
            replay.logits = model(inputs)
    finally:
        for handle in handles:
            handle.remove()
    if target_start[0] is None or not isinstance(replay.activation, torch.Tensor):
        yield replay
        return
    before = {m for m in modules if calls.get(m) == 1 and m in outputs
              and finished[m] < target_start[0] and _replayable(outputs[m])}
    # Only the outermost: a skipped module's children are never called anyway.
    for name, module in model.named_modules():
        if module in before:
            for child in module.modules():
                if child is not module:
                    before.discard(child)
    replay._skipped = {m: outputs[m] for m in before}
    replay._patch()
    try:
        if replay._skipped:
            # Views first; real copies where the model writes into an output in place.
            for replay._copy in (False, True):
                try:
                    # Two copies: an in-place write into a view of more than one copy fails.
                    pair = _expand(replay.activation, 2, True)
                    with torch.no_grad():
                        again = replay.run(pair, inputs)
                    replay.active = all(check(a[None], replay.logits) for a in again)
                except RuntimeError:  # an in-place op on an expanded view
                    replay.active = False
                if replay.active:
                    break
            if not replay.active:
                replay._unpatch()
                replay._skipped = {}
        yield replay
    finally:
        replay._unpatch()



@contextmanager
def records_kept(cam) -> Iterator[None]:
    """grad-cam's hooks on the target layers record every forward pass; the extra passes of
    a perturbation method (thousands of copies) are dropped again, not kept in memory."""
    hooks = cam.activations_and_grads
    count = len(hooks.activations)
    try:
        yield
    finally:
        del hooks.activations[count:]
