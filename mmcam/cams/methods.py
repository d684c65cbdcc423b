"""The CAM method table: every CAM class the installed grad-cam provides, by name.

Names are matched case-insensitively and without punctuation, so ``GradCAM``, ``gradcam`` and
``grad-cam`` are one method; ``gradcam++`` is an alias of ``GradCAMPlusPlus``. The table is
read from the installed package, so a grad-cam release that adds a method adds it here too.
A native (faster) version of a method can be registered next to grad-cam's with
:func:`register_method`.
"""
from __future__ import annotations

import inspect
import re
from contextlib import contextmanager, nullcontext
from typing import Callable, Dict, Iterator, List, Optional, Sequence

import pytorch_grad_cam
from pytorch_grad_cam.base_cam import BaseCAM
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel

from mmcam.cams.attention import AttentionMethod, AttentionRollout, GradRollout
from mmcam.cams.ablation import AblationCAM
from mmcam.cams.eigen import EigenCAM, EigenGradCAM
from mmcam.cams.gradient import NATIVE_GRADIENT_METHODS
from mmcam.cams.score import ScoreCAM
from mmcam.cams.shapley import ShapleyCAM
from mmcam.utils.errors import InputError

#: Other spellings users know from papers and from mmpretrain's tool.
ALIASES = {'gradcampp': 'gradcamplusplus'}

#: Methods that explain by re-running the model on masked inputs/activations (slow, no grads).
PERTURBATION = {'scorecam', 'ablationcam'}

#: Methods that detach the input and build their own (patches), so their backward pass only
#: exists through weights that require grad: the weights must stay unfrozen for them.
NEEDS_WEIGHT_GRAPH = {'sess'}


def _key(name: str) -> str:
    key = re.sub(r'[^a-z0-9]', '', name.lower().replace('++', 'plusplus'))
    return ALIASES.get(key, key)


def _is_method(obj) -> bool:
    """A CAM method: BaseCAM's subclasses, and wrappers built the same way (RefineCAM, SESS)."""
    if not inspect.isclass(obj) or obj is BaseCAM:
        return False
    if issubclass(obj, BaseCAM):
        return True
    init = list(inspect.signature(obj.__init__).parameters)[1:3]
    forward = getattr(obj, 'forward', None)
    return (init == ['model', 'target_layers'] and callable(forward)
            and 'input_tensor' in inspect.signature(forward).parameters)


def _discover() -> Dict[str, type]:
    return {_key(name): obj for name, obj in vars(pytorch_grad_cam).items() if _is_method(obj)}


_METHODS: Dict[str, type] = _discover()
#: mmcam's versions of grad-cam methods, under grad-cam's names: the same maps, faster
#: (EigenCAM, EigenGradCAM) or also on ViT tokens (ShapleyCAM); their modules say why.
_METHODS.update({_key(cls.__name__): cls for cls in (EigenCAM, EigenGradCAM, ShapleyCAM)})
#: The same maps, faster: gradient methods whose backward pass ends at the target layers
#: (cams/gradient.py), AblationCAM re-running only the layers after the target
#: (cams/ablation.py), ScoreCAM scoring each distinct mask once (cams/score.py).
_METHODS.update({_key(cls.__name__): cls
                 for cls in (*NATIVE_GRADIENT_METHODS, AblationCAM, ScoreCAM)})
#: Transformer methods: maps read from the global self-attention of ViT-like models
#: (mmcam/cams/attention.py); they ignore the target layers.
_METHODS.update({_key(cls.__name__): cls for cls in (AttentionRollout, GradRollout)})


def register_method(name: str, cls: type) -> None:
    """Add (or replace) a method, e.g. a native implementation of a grad-cam method."""
    _METHODS[_key(name)] = cls


def method_names() -> List[str]:
    """The class names of every available method, as users may type them."""
    return sorted({cls.__name__ for cls in _METHODS.values()}, key=str.lower)


def transformer_method_names() -> List[str]:
    """The methods that read attention, not a target layer (ViT-like models only)."""
    return sorted({cls.__name__ for cls in _METHODS.values()
                   if isinstance(cls, type) and issubclass(cls, AttentionMethod)}, key=str.lower)


def get_method(name: str) -> type:
    """The CAM class for a name typed by a user (case-insensitive; ``gradcam++`` works)."""
    key = _key(name)
    if key not in _METHODS:
        raise InputError(f'--method {name!r} is not a CAM method; expected one of '
                         f'{", ".join(method_names())} (case-insensitive, GradCAM++ also works).')
    return _METHODS[key]


def needs_weight_graph(name: str) -> bool:
    """See :data:`NEEDS_WEIGHT_GRAPH`."""
    return _key(get_method(name).__name__) in NEEDS_WEIGHT_GRAPH


def supports_aug_smooth(cam) -> bool:
    """BaseCAM methods take ``aug_smooth``; the wrappers (RefineCAM, SESS, ...) do not."""
    return 'aug_smooth' in inspect.signature(cam.__call__).parameters


def build_cam(name: str, model: nn.Module, target_layers: Sequence[nn.Module],
              reshape_transform: Optional[Callable] = None, token_layers: bool = False,
              batch_size: int = 32) -> BaseCAM:
    """Instantiate a method with the arguments its class takes.

    Args:
        token_layers: the target layers output transformer tokens; AblationCAM then needs
            grad-cam's token-aware ablation layer.
        batch_size: masked copies per forward pass for ScoreCAM / AblationCAM.
    """
    cls = get_method(name)
    params = inspect.signature(cls.__init__).parameters
    kwargs = {}
    if 'reshape_transform' in params:
        kwargs['reshape_transform'] = reshape_transform
    if token_layers and 'ablation_layer' in params:
        from pytorch_grad_cam.ablation_layer import AblationLayerVit
        kwargs['ablation_layer'] = AblationLayerVit()
    if 'batch_size' in params:
        kwargs['batch_size'] = batch_size
    cam = cls(model, list(target_layers), **kwargs)
    if hasattr(cam, 'batch_size'):  # ScoreCAM reads it as an attribute
        cam.batch_size = batch_size
    return cam


def _hook_owners(cam) -> List:
    """The BaseCAM objects inside ``cam`` (itself, or the ones a wrapper method builds)."""
    owners = [cam] if hasattr(cam, 'activations_and_grads') else []
    for attr in ('base_cam', 'base_cam_per_layer'):
        inner = getattr(cam, attr, None)
        owners += inner if isinstance(inner, list) else [inner] if inner is not None else []
    return [o for o in owners if hasattr(o, 'activations_and_grads')]


@contextmanager
def cam_session(name: str, model: nn.Module, target_layers: Sequence[nn.Module],
                reshape_transform: Optional[Callable] = None, **kwargs) -> Iterator:
    """:func:`build_cam` whose forward/backward hooks are always removed afterwards.

    grad-cam's wrapper methods (RefineCAM, ...) have no ``__exit__`` of their own, and a
    BaseCAM only releases its hooks in ``__exit__``/``__del__``; this covers both.
    """
    cam = build_cam(name, model, target_layers, reshape_transform, **kwargs)
    # Methods that keep the graph (detach=False: ShapleyCAM's Hessian-vector product) take a
    # second derivative, which the fused attention kernels do not have (on the CPU:
    # "derivative for aten::_scaled_dot_product_flash_attention_for_cpu_backward is not
    # implemented"); PyTorch's plain attention has one.
    second_order = any(getattr(owner, 'detach', True) is False for owner in _hook_owners(cam))
    try:
        with sdpa_kernel(SDPBackend.MATH) if second_order else nullcontext():
            yield cam
    finally:
        for owner in _hook_owners(cam):
            hooks = owner.activations_and_grads
            try:
                hooks.release()
            except RuntimeError:
                # grad-cam's release detaches saved tensors in place, which fails on views
                # (methods with detach=False); drop them and remove the hooks anyway.
                hooks.activations.clear()
                hooks.gradients.clear()
                for handle in hooks.handles:
                    handle.remove()
                hooks.handles.clear()
