"""The tools users run instead of mmcam, made runnable on the current stack (benchmarks only).

grad-cam >= 1.5 removed the ``use_cuda`` argument that mmpretrain's ``vis_cam.py`` and mmyolo's
``boxam_utils`` still pass, and setuptools >= 80 no longer ships the ``pkg_resources`` module
that mmpretrain's tool imports; :func:`install_shim` restores exactly those two, nothing else.
"""
from __future__ import annotations

import functools
import importlib.metadata
import sys
import types


def _drop_use_cuda(init):
    @functools.wraps(init)
    def wrapper(self, *args, use_cuda=None, **kwargs):
        return init(self, *args, **kwargs)
    return wrapper


def install_shim() -> None:
    """``use_cuda`` accepted (and ignored: the model's device decides) by grad-cam's classes,
    and a ``pkg_resources.get_distribution(name).version`` backed by importlib.metadata."""
    import pytorch_grad_cam
    from pytorch_grad_cam.base_cam import BaseCAM
    for cls in vars(pytorch_grad_cam).values():
        if isinstance(cls, type) and issubclass(cls, BaseCAM) and \
                not getattr(cls.__init__, '_use_cuda_shim', False):
            cls.__init__ = _drop_use_cuda(cls.__init__)
            cls.__init__._use_cuda_shim = True
    if 'pkg_resources' not in sys.modules:
        try:
            import pkg_resources  # noqa: F401
        except ImportError:
            module = types.ModuleType('pkg_resources')
            module.get_distribution = lambda name: types.SimpleNamespace(
                version=importlib.metadata.version(name))
            sys.modules['pkg_resources'] = module
