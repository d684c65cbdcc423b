"""The CAM maths: method table, target layers, token -> grid reshaping."""
from .layers import default_target_layer, preview_rows, resolve_layers
from .methods import build_cam, get_method, method_names, register_method
from .reshape import TokenReshape, patch_grid_probe

__all__ = ['default_target_layer', 'preview_rows', 'resolve_layers', 'build_cam', 'get_method',
           'method_names', 'register_method', 'TokenReshape', 'patch_grid_probe']
