"""mmcam: see what OpenMMLab models look at."""
from .utils.checkpoint import register_safe_globals
from .version import __version__

# OpenMMLab checkpoints hold numpy scalars and mmengine HistoryBuffers in their meta; allow those
# (and only those) through torch's weights-only loader, also when an mmengine Runner loads.
register_safe_globals()

# Register mmcam's parts so that ``custom_imports=dict(imports=['mmcam'])`` can build them.
from . import visualization  # noqa: E402,F401
from . import engine  # noqa: E402,F401

__all__ = ['__version__']
