from .checkpoint import (UNSAFE_ENV, UnsafeCheckpointError, load_checkpoint,
                         load_checkpoint_file, register_safe_globals)

__all__ = ['UNSAFE_ENV', 'UnsafeCheckpointError', 'load_checkpoint', 'load_checkpoint_file',
           'register_safe_globals']
