"""mmcam's registries: children of mmengine's, so configs can say ``type='mmcam.X'``.

A config that lists ``custom_imports=dict(imports=['mmcam'])`` gets every part below
registered under the ``mmcam`` scope; ``register_all_modules()`` does the same from Python.
"""
from mmengine.registry import HOOKS as MMENGINE_HOOKS
from mmengine.registry import METRICS as MMENGINE_METRICS
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import VISUALIZERS as MMENGINE_VISUALIZERS
from mmengine.registry import DefaultScope, Registry

VISUALIZERS = Registry(
    'visualizer', parent=MMENGINE_VISUALIZERS, scope='mmcam',
    locations=['mmcam.visualization'])
HOOKS = Registry(
    'hook', parent=MMENGINE_HOOKS, scope='mmcam', locations=['mmcam.engine'])
MODELS = Registry(
    'model', parent=MMENGINE_MODELS, scope='mmcam', locations=['mmcam.models'])
METRICS = Registry(
    'metric', parent=MMENGINE_METRICS, scope='mmcam', locations=['mmcam.evaluation'])


def register_all_modules(init_default_scope: bool = False) -> None:
    """Import every module that registers a part, so it can be built by name.

    Args:
        init_default_scope: also make ``mmcam`` the current default scope. Off by
            default, because mmcam works inside another project's scope (mmpretrain's
            or mmyolo's) and names its own parts with the ``mmcam.`` prefix.
    """
    import mmcam.engine  # noqa: F401
    import mmcam.evaluation  # noqa: F401
    import mmcam.models  # noqa: F401
    import mmcam.visualization  # noqa: F401
    if init_default_scope and DefaultScope.get_current_instance() is None:
        DefaultScope.get_instance('mmcam', scope_name='mmcam')
