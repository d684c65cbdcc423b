"""Loading OpenMMLab checkpoints on torch >= 2.6 without unpickling arbitrary code.

Since torch 2.6, ``torch.load`` defaults to ``weights_only=True``; mmengine 0.10.7 calls it
without the argument, so a checkpoint whose ``meta`` holds a numpy scalar or mmengine's
``HistoryBuffer`` (written by every mmengine Runner) fails to load.  Rather than fall back to
full unpickling, mmcam allow-lists the types such checkpoints are known to contain; anything
else is refused with an :class:`UnsafeCheckpointError` that names the type and the opt-in.
"""
from __future__ import annotations

import os
import pickle
import re
from collections import OrderedDict
from typing import Any, Optional, Union

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn

from mmcam.utils.errors import first_line

#: Environment variable that allows full unpickling of checkpoints (the documented opt-in).
UNSAFE_ENV = 'MMCAM_ALLOW_UNSAFE_CHECKPOINT'


class UnsafeCheckpointError(RuntimeError):
    """A checkpoint holds a type that is not on mmcam's allow-list."""


def _safe_globals() -> list:
    """Types that OpenMMLab checkpoints hold and that build no code when unpickled."""
    from mmengine.logging.history_buffer import HistoryBuffer

    dtype_classes = [type(np.dtype(t)) for t in (
        'bool', 'int8', 'int16', 'int32', 'int64', 'uint8', 'uint16', 'uint32', 'uint64',
        'float16', 'float32', 'float64', 'complex64', 'complex128', 'str', 'object')]
    scalar = np._core.multiarray.scalar if hasattr(np, '_core') else np.core.multiarray.scalar
    reconstruct = (np._core.multiarray._reconstruct if hasattr(np, '_core')
                   else np.core.multiarray._reconstruct)
    entries = [
        np.ndarray, np.dtype, HistoryBuffer, OrderedDict,
        # numpy 1.x checkpoints name these under numpy.core, numpy 2 under numpy._core.
        (scalar, 'numpy.core.multiarray.scalar'), (scalar, 'numpy._core.multiarray.scalar'),
        (reconstruct, 'numpy.core.multiarray._reconstruct'),
        (reconstruct, 'numpy._core.multiarray._reconstruct'),
    ]
    entries += dtype_classes
    import codecs
    entries.append((codecs.encode, '_codecs.encode'))  # how numpy pickles raw bytes
    # HistoryBuffer pickles its statistics methods as getattr(buffer, 'mean'); a general
    # getattr is not allowed, only that lookup.
    entries += [(_history_buffer_method, 'builtins.getattr'),
                (_history_buffer_method, '__builtin__.getattr')]
    return entries


def _history_buffer_method(obj: Any, name: str) -> Any:
    """The one ``getattr`` an mmengine checkpoint needs: a HistoryBuffer statistic method."""
    from mmengine.logging.history_buffer import HistoryBuffer

    if ((obj is HistoryBuffer or isinstance(obj, HistoryBuffer)) and not name.startswith('_')
            and callable(getattr(HistoryBuffer, name, None))):
        return getattr(obj, name)
    raise pickle.UnpicklingError(
        f'GLOBAL builtins.getattr used on {type(obj).__name__}.{name}: only HistoryBuffer '
        'statistics may be looked up while loading a checkpoint')


def register_safe_globals() -> None:
    """Add mmcam's allow-list to torch's weights-only unpickler, process-wide.

    Called on ``import mmcam`` so that tools driven by mmengine's Runner (which call
    ``torch.load`` themselves) load ordinary OpenMMLab checkpoints too.  Only the types
    listed in :func:`_safe_globals` are added; nothing else changes.
    """
    torch.serialization.add_safe_globals(_safe_globals())


def _unsafe_allowed(allow_unsafe: Optional[bool]) -> bool:
    if allow_unsafe is not None:
        return allow_unsafe
    return os.environ.get(UNSAFE_ENV, '').lower() in ('1', 'true', 'yes')


def load_checkpoint_file(filename: str,
                         map_location: Union[str, torch.device] = 'cpu',
                         allow_unsafe: Optional[bool] = None) -> Any:
    """``torch.load`` a checkpoint with the weights-only unpickler and mmcam's allow-list.

    Args:
        filename: path of the checkpoint file.
        map_location: where to put the tensors.
        allow_unsafe: load with full unpickling. Only for files you trust: unpickling
            can run arbitrary code. ``None`` reads the ``MMCAM_ALLOW_UNSAFE_CHECKPOINT``
            environment variable.

    Raises:
        FileNotFoundError: the file does not exist.
        UnsafeCheckpointError: the file holds a type outside the allow-list.
    """
    if not os.path.isfile(filename):
        raise FileNotFoundError(
            f'Checkpoint {filename!r} does not exist. Expected a .pth file written by '
            'torch.save or an mmengine Runner; check the path.')
    if filename.endswith('.safetensors'):  # tensors only, no pickle: nothing can run
        try:
            return {'state_dict': load_file(filename, device=str(map_location))}
        except SafetensorError as exc:
            raise CorruptCheckpointError(filename, exc) from None
    if _unsafe_allowed(allow_unsafe):
        return torch.load(filename, map_location=map_location, weights_only=False)
    # Not torch's safe_globals() context manager: on exit it removes the listed types even
    # when they had been registered process-wide before.
    register_safe_globals()
    try:
        return torch.load(filename, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        match = re.search(r'GLOBAL ([\w.]+)', str(exc))
        if match is None:  # not a forbidden type: not a checkpoint (text, a cut-off pickle)
            raise CorruptCheckpointError(filename, exc) from None
        offending = match.group(1)
        raise UnsafeCheckpointError(
            f'Refused to load {filename!r}: it contains {offending}, which is not on '
            "mmcam's list of types that are safe to unpickle (tensors, numpy arrays and "
            'scalars, mmengine HistoryBuffer). Expected a checkpoint of tensors and plain '
            'metadata. If you trust this file, load it anyway with --allow-unsafe-checkpoint '
            f'on the command line, allow_unsafe=True in Python, or {UNSAFE_ENV}=1 in the '
            'environment (this runs any code the file contains).') from None
    except (RuntimeError, EOFError, ValueError, KeyError, IndexError) as exc:  # cut off, say
        raise CorruptCheckpointError(filename, exc) from None


class CorruptCheckpointError(UnsafeCheckpointError):
    """A file that is not a whole checkpoint (truncated, or not a checkpoint at all)."""

    def __init__(self, filename: str, exc: BaseException) -> None:
        reason = first_line(exc, 120)
        size = os.path.getsize(filename)
        super().__init__(
            f'Checkpoint {filename!r} ({size} bytes) is truncated or not a checkpoint '
            f'({type(exc).__name__}: {reason}). Expected a whole file written by torch.save '
            'or an mmengine Runner; download or copy it again.')


def load_checkpoint(model: nn.Module,
                    filename: str,
                    map_location: Union[str, torch.device] = 'cpu',
                    strict: bool = False,
                    allow_unsafe: Optional[bool] = None) -> dict:
    """Load a checkpoint file into ``model`` and return the whole checkpoint dict.

    Accepts both a bare state dict and the ``{'state_dict': ..., 'meta': ...}`` form that
    mmengine writes; a ``module.`` prefix left by (Distributed)DataParallel is removed.
    """
    from mmengine.runner.checkpoint import _load_checkpoint_to_model

    checkpoint = load_checkpoint_file(filename, map_location, allow_unsafe)
    if not isinstance(checkpoint, dict):
        raise UnsafeCheckpointError(
            f'{filename!r} holds a {type(checkpoint).__name__}, expected a dict with a '
            "'state_dict' (as mmengine writes) or a state dict itself.")
    # mmengine would print every missing and unexpected key; the loader says it in one line.
    _load_checkpoint_to_model(model, checkpoint, strict=strict, logger='silent',
                              revise_keys=[(r'^module\.', '')])
    return checkpoint
