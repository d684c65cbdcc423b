"""Target layers: the default choice, lookup by the names users type, and a model preview."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, List, Optional, Sequence, Tuple

import torch
from torch import nn

from mmcam.cams.reshape import TokenReshape, patch_grid_probe
from mmcam.utils.errors import InputError
from mmcam.utils.modules import find_module

_NORMS = (nn.modules.batchnorm._BatchNorm, nn.LayerNorm, nn.GroupNorm,
          nn.modules.instancenorm._InstanceNorm)


def backbone_extra_tokens(backbone: nn.Module) -> Optional[int]:
    """The backbone's own count of class/distillation tokens, if it declares one."""
    value = getattr(backbone, 'num_extra_tokens', None)
    return int(value) if isinstance(value, int) else None


def default_target_layer(classifier: nn.Module, num_extra_tokens: Optional[int] = None,
                         inputs: Optional[torch.Tensor] = None) -> Tuple[str, str]:
    """The layer mmpretrain's CAM docs recommend, where it still has a spatial output, and why.

    * ViT-like backbones with extra tokens: the norm before the last attention block
      (``backbone.layers[-1].ln1``; T2T-ViT: ``backbone.encoder[-1].ln1``). After the last
      block only the class token feeds the head, so the patch tokens there carry no gradient.
    * Anything else (CNNs, Swin): the last normalisation layer of the backbone, if its output
      is still a (B, C, H, W) map or a (B, L, C) token sequence in a probe pass on ``inputs``.
    * Otherwise (LeViT, EdgeNeXt and TinyViT end with a norm after global pooling; VGG has no
      norm): the layer whose output is the last such map or sequence of the probe pass.

    Returns ``(name, reason)`` with ``name`` in ``named_modules`` form. Without ``inputs``
    the norms are not probed (mmpretrain's rule as it is).
    """
    backbone = getattr(classifier, 'backbone', None)
    if backbone is None:
        raise InputError(f'{type(classifier).__name__} has no backbone, so no default target '
                         'layer exists; pass --target-layers (see --preview-model).')
    extra = num_extra_tokens if num_extra_tokens is not None else backbone_extra_tokens(backbone)
    if extra:
        # Transformer blocks are the modules with an attention child and a first norm
        # (ViT/DeiT: layers[i].ln1, T2T-ViT: encoder[i].ln1, others: norm1).
        def has(m, names):
            return any(isinstance(getattr(m, n, None), nn.Module) for n in names)
        blocks = [(name, m) for name, m in backbone.named_modules(prefix='backbone')
                  if has(m, ('attn', 'attention')) and has(m, ('ln1', 'norm1'))]
        if blocks:
            name, last = blocks[-1]
            norm = 'ln1' if isinstance(getattr(last, 'ln1', None), nn.Module) else 'norm1'
            return (f'{name}.{norm}',
                    f'the norm before the last attention block ({extra} extra tokens)')
    norms = [name for name, m in backbone.named_modules(prefix='backbone')
             if isinstance(m, _NORMS)]
    if inputs is None:
        if not norms:
            raise InputError(f'The backbone {type(backbone).__name__} has no normalisation '
                             'layer to use as the default target; pass --target-layers '
                             '(see --preview-model).')
        return norms[-1], "the backbone's last normalisation layer"
    spatial, shapes = _spatial_outputs(classifier, inputs, num_extra_tokens)
    if norms and norms[-1] in spatial:
        return norms[-1], "the backbone's last normalisation layer"
    if norms and num_extra_tokens is not None and shapes.get(norms[-1], '').count('x') == 2:
        # Tokens that do not fit a grid with the --num-extra-tokens the user gave: keep the
        # layer, so the reshape's error names that option instead of a layer being guessed.
        return norms[-1], "the backbone's last normalisation layer"
    if not spatial:
        raise InputError(f'No layer of the backbone {type(backbone).__name__} outputs a '
                         '(B, C, H, W) map or (B, L, C) tokens, so no default target exists; '
                         'pass --target-layers (see --preview-model).')
    why = (f'the last normalisation layer {norms[-1]} outputs {shapes[norms[-1]]}' if norms
           else 'the backbone has no normalisation layer')
    return spatial[-1], f'the last backbone layer with a spatial output; {why}'


def _spatial_outputs(classifier: nn.Module, inputs: torch.Tensor,
                     num_extra_tokens: Optional[int]) -> Tuple[List[str], dict]:
    """Backbone layers whose output the CAM reshape accepts, in the order their outputs were
    produced by one forward pass (a block after its children); and each layer's output shape."""
    backbone = classifier.backbone
    reshape = TokenReshape('probe', num_extra_tokens, backbone_extra_tokens(backbone))
    order: List[str] = []
    shapes: dict = {}

    def check(module, args, output, name):
        if name in shapes:
            return
        shapes[name] = _shape_of(output)
        try:
            reshape(output)
        except (InputError, AttributeError, RuntimeError, TypeError, ValueError):
            return
        # One spatial position or a single token is pooled already, not a map.
        if reshape.grid_hw is not None and reshape.grid_hw[0] * reshape.grid_hw[1] > 1:
            order.append(name)

    handles = [module.register_forward_hook(lambda m, a, o, name=name: check(m, a, o, name))
               for name, module in backbone.named_modules(prefix='backbone')
               if module is not backbone]
    try:
        with patch_grid_probe(backbone, [reshape], inputs.shape[-2:]), torch.no_grad():
            classifier(inputs, mode='tensor')
    finally:
        for h in handles:
            h.remove()
    return order, shapes


def resolve_layers(classifier: nn.Module, names: Sequence[str]) -> List[nn.Module]:
    """Look up every name (``backbone.layer4[-1]``, ``backbone.layers.11.ln1``, ...)."""
    return [find_module(classifier, name) for name in names]


def _shape_of(output) -> str:
    if torch.is_tensor(output):
        return 'x'.join(str(v) for v in output.shape)
    if isinstance(output, (tuple, list)) and output and all(isinstance(o, int) for o in output):
        return str(tuple(output))  # e.g. the (h, w) patch grid next to the tokens
    if isinstance(output, (tuple, list)):
        parts = [_shape_of(o) for o in output]
        return '(' + ', '.join(p for p in parts if p) + ')'
    return ''


@contextmanager
def record_output_shapes(model: nn.Module) -> Iterator[dict]:
    """Record each module's output shape during forward passes; hooks removed on exit."""
    shapes: dict = {}
    handles = []
    for name, module in model.named_modules():
        if not name:
            continue

        def hook(mod, args, output, name=name):
            shapes.setdefault(name, _shape_of(output))
        handles.append(module.register_forward_hook(hook))
    try:
        yield shapes
    finally:
        for h in handles:
            h.remove()


def preview_rows(classifier: nn.Module,
                 inputs: Optional[torch.Tensor] = None) -> List[Tuple[str, str, str]]:
    """``(name, type, output shape)`` for every layer; shapes need an example input."""
    shapes: dict = {}
    if inputs is not None:
        with record_output_shapes(classifier) as shapes, torch.no_grad():
            classifier(inputs, mode='tensor')
    return [(name, type(m).__name__, shapes.get(name, ''))
            for name, m in classifier.named_modules() if name]
