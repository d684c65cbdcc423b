"""Layers by the names users type (``backbone.layer4[-1]``, ``neck.out_layers[2]``)."""
from __future__ import annotations

import difflib

from torch import nn

from mmcam.utils.errors import InputError


def find_module(model: nn.Module, name: str) -> nn.Module:
    """Look a layer up by any of the forms users type.

    ``backbone.layer4``, ``backbone.layer4.2``, ``backbone.layer4[-1]``,
    ``backbone.layers[-1].ln1``, ``neck.out_layers[2]``.
    """
    module = model
    path = ''
    for part in name.replace('[', '.[').split('.'):
        if not part:
            continue
        if part.startswith('['):
            if not part.endswith(']'):
                raise InputError(f'Layer name {name!r} has an unclosed index {part!r}.')
            index = part[1:-1]
        else:
            index = None
        try:
            if index is not None:
                module = list(module.children())[int(index)] if not isinstance(
                    module, (nn.Sequential, nn.ModuleList)) else module[int(index)]
            elif part.lstrip('-').isdigit() and isinstance(module, (nn.Sequential, nn.ModuleList)):
                module = module[int(part)]
            else:
                module = getattr(module, part)
                if not isinstance(module, nn.Module):
                    raise AttributeError(part)
        except (AttributeError, IndexError, ValueError, TypeError):
            names = [n for n, _ in model.named_modules() if n]
            close = difflib.get_close_matches(name.replace('[', '.').replace(']', ''), names, n=5,
                                              cutoff=0.5)
            hint = f' Closest names: {", ".join(close)}.' if close else ''
            raise InputError(
                f'Layer {name!r} does not exist in {type(model).__name__} (failed at '
                f'{(path + "." + part).lstrip(".")!r}).{hint} Run with --preview-model to list '
                'every layer.') from None
        path = f'{path}.{part}'
    return module
