"""Turn any layer output into the (B, C, h, w) grid that grad-cam's methods work on.

CNN layers already give (B, C, h, w). Transformer layers give tokens:

* ViT, DeiT, T2T-ViT: (B, L, C) with ``num_extra_tokens`` class/distillation tokens first;
* Swin: (B, L, C) with no extra token, or channel-last (B, h, w, C).

The token grid is not guessed with a square root: it comes from the patch grid the backbone
reported for this very input (``patch_embed`` and friends return ``(tokens, (h, w))``), halved
per downsampling stage for hierarchical models, so non-square inputs work. Only when no patch
grid is known is the token count factorised with the input's aspect ratio.
"""
from __future__ import annotations

import math
from contextlib import contextmanager
from typing import Iterator, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from mmcam.utils.errors import InputError

HW = Tuple[int, int]


def _is_grid_of(h: int, w: int, input_hw: Sequence[int]) -> bool:
    """True if an h x w grid tiles the input with one (roughly integer) stride."""
    if h <= 0 or w <= 0:
        return False
    sy, sx = input_hw[0] / h, input_hw[1] / w
    return abs(sy - sx) <= max(1.0, 0.15 * max(sy, sx)) and min(sy, sx) >= 1.0


def _factor_grid(n: int, input_hw: Sequence[int]) -> Optional[HW]:
    """The h x w = n factorisation closest to the input's aspect ratio, if one fits it."""
    aspect = input_hw[0] / input_hw[1]
    best = None
    for h in range(1, n + 1):
        if n % h:
            continue
        w = n // h
        err = abs(math.log(h / w) - math.log(aspect))
        if best is None or err < best[0]:
            best = (err, (h, w))
    if best is not None and _is_grid_of(*best[1], input_hw):
        return best[1]
    return None


class TokenReshape:
    """grad-cam ``reshape_transform``: a layer output -> (B, C, h, w).

    Args:
        layer_name: used in error messages only.
        num_extra_tokens: tokens before the patch tokens (1 for ViT's class token, 2 for
            DeiT's class + distillation tokens, 0 for Swin). ``None`` means "the backbone's
            own ``num_extra_tokens``, else whatever the patch grid leaves over".
        backbone_extra: the backbone's ``num_extra_tokens`` attribute, if it has one.
    """

    def __init__(self, layer_name: str = '', num_extra_tokens: Optional[int] = None,
                 backbone_extra: Optional[int] = None) -> None:
        self.layer_name = layer_name
        self.num_extra_tokens = num_extra_tokens
        self.backbone_extra = backbone_extra
        self.input_hw: Optional[HW] = None      # set per batch by the caller
        self.patch_hw: Optional[HW] = None      # set per batch by PatchGridProbe
        self.kind: Optional[str] = None         # 'grid', 'tokens' or 'channel_last', for reports
        self.grid_hw: Optional[HW] = None       # (h, w) of the last map grid

    def __call__(self, x):
        out = self._to_grid(x)
        self.grid_hw = tuple(out.shape[-2:])  # the map's resolution, for reports
        return out

    def _to_grid(self, x):
        if isinstance(x, (tuple, list)):  # (tokens, hw_shape) from patch embeddings
            x = x[0]
        if x.dim() == 4:
            if self._channel_last(x):
                self.kind = 'channel_last'
                return x.permute(0, 3, 1, 2).contiguous()
            self.kind = 'grid'
            # A copy: the next block often adds the residual in place into this very tensor.
            return x.clone()
        if x.dim() == 3:
            self.kind = 'tokens'
            extra, (h, w) = self.token_layout(x.shape[1])
            tokens = x[:, extra:, :]
            return tokens.reshape(x.shape[0], h, w, x.shape[2]).permute(0, 3, 1, 2).contiguous()
        raise InputError(
            f'Layer {self.layer_name!r} outputs a tensor of shape {tuple(x.shape)}; expected '
            '(B, C, H, W) feature maps or (B, L, C) tokens. Pick another --target-layers '
            '(see --preview-model).')

    def _channel_last(self, x: torch.Tensor) -> bool:
        if self.input_hw is None:
            return False
        return (_is_grid_of(x.shape[1], x.shape[2], self.input_hw)
                and not _is_grid_of(x.shape[2], x.shape[3], self.input_hw))

    def _grids(self) -> List[HW]:
        """Candidate token grids: the patch grid and its halvings (hierarchical stages)."""
        if self.patch_hw is None:
            return []
        h, w = self.patch_hw
        grids = []
        while h >= 1 and w >= 1:
            grids.append((h, w))
            if h == 1 and w == 1:
                break
            h, w = math.ceil(h / 2), math.ceil(w / 2)
        return grids

    def _grid_of(self, n: int, grids: Sequence[HW]) -> Optional[HW]:
        """The known patch grid of ``n`` tokens; with none known, a factorisation of ``n``."""
        for grid in grids:
            if grid[0] * grid[1] == n:
                return grid
        return None if grids else _factor_grid(n, self.input_hw or (1, 1))

    def token_layout(self, num_tokens: int) -> Tuple[int, HW]:
        """(extra tokens, (h, w)) for a layer that outputs ``num_tokens`` tokens."""
        grids = self._grids()
        if self.num_extra_tokens is not None:
            extra = self.num_extra_tokens
            if extra < 0 or extra >= num_tokens:
                raise InputError(
                    f'--num-extra-tokens {extra} does not fit layer {self.layer_name!r}, '
                    f'which outputs {num_tokens} tokens; expected 0 <= N < {num_tokens}.')
            grid = self._grid_of(num_tokens - extra, grids)
            if grid is not None:
                return extra, grid
            raise InputError(self._mismatch(num_tokens, extra, grids))
        # Automatic: the backbone's own count first, then whatever a patch grid leaves over,
        # if that is fewer tokens than the grid has (extra tokens are a few in front).
        tries = [] if self.backbone_extra is None else [self.backbone_extra]
        tries += [num_tokens - h * w for h, w in grids if num_tokens - h * w < h * w]
        for extra in tries:
            if extra is None or not 0 <= extra < num_tokens:
                continue
            grid = self._grid_of(num_tokens - extra, grids)
            if grid is not None:
                return extra, grid
        if not grids:
            # No patch grid and no count from the backbone: try the usual 0, 1, 2 extra tokens.
            for extra in (0, 1, 2):
                grid = _factor_grid(num_tokens - extra, self.input_hw or (1, 1))
                if grid is not None:
                    return extra, grid
        raise InputError(self._mismatch(num_tokens, None, grids))

    def _mismatch(self, num_tokens: int, extra: Optional[int], grids: List[HW]) -> str:
        grid_txt = (' or '.join(f'{h}x{w}' for h, w in grids[:3]) if grids
                    else 'a grid matching the input')
        if extra is None:
            return (f'Layer {self.layer_name!r} outputs {num_tokens} tokens, which do not form '
                    f'{grid_txt} patch tokens plus extra tokens; pass --num-extra-tokens N '
                    'or pick another --target-layers.')
        hint = ''
        patches = grids[0][0] * grids[0][1] if grids else None
        if patches is not None and num_tokens >= patches:
            hint = f' (this layer suggests --num-extra-tokens {num_tokens - patches})'
        return (f'--num-extra-tokens {extra} leaves {num_tokens - extra} of the '
                f'{num_tokens} tokens of layer {self.layer_name!r}, which is not a {grid_txt} '
                f'patch grid; expected the number of class/distillation tokens{hint}.')


def _hw_pair(value) -> Optional[HW]:
    if isinstance(value, (tuple, list, torch.Size)) and len(value) == 2 and all(
            isinstance(v, int) for v in value):
        return int(value[0]), int(value[1])
    return None


@contextmanager
def patch_grid_probe(backbone: nn.Module, transforms: Sequence[TokenReshape],
                     input_hw: HW) -> Iterator[None]:
    """Tell ``transforms`` the patch grid the backbone reports during the next forward passes.

    mmpretrain's patch embeddings (``PatchEmbed``, T2T's ``tokens_to_token``, ...) return
    ``(tokens, (h, w))``; the first such output in a forward pass is the patch grid. The hooks
    are removed on exit.
    """
    for t in transforms:
        t.input_hw = tuple(int(v) for v in input_hw)
        t.patch_hw = None
    state = {'seen': False}

    def reset(module, args):
        state['seen'] = False

    def record(module, args, output):
        if state['seen'] or not isinstance(output, (tuple, list)) or len(output) != 2:
            return
        hw = _hw_pair(output[1])
        if hw is not None and torch.is_tensor(output[0]) and output[0].dim() == 3:
            state['seen'] = True
            for t in transforms:
                t.patch_hw = hw

    handles = [backbone.register_forward_pre_hook(reset)]
    handles += [m.register_forward_hook(record) for _, m in backbone.named_modules()
                if m is not backbone]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


class PyramidReshape:
    """grad-cam ``reshape_transform``: several maps from one layer -> one (B, C, h, w) grid.

    A layer like ``neck`` returns one map per pyramid level; they are resized to the largest
    level's size, capped at ``max_shape`` (h, w), and stacked along channels. A single map
    passes through unchanged.
    """

    def __init__(self, max_shape: Optional[Sequence[int]] = None) -> None:
        self.max_shape = tuple(max_shape) if max_shape else None

    def __call__(self, output):
        if torch.is_tensor(output):
            return output
        maps = [m for m in output if torch.is_tensor(m) and m.dim() == 4]
        h = max(m.shape[-2] for m in maps)
        w = max(m.shape[-1] for m in maps)
        if self.max_shape is not None:
            h, w = (min(h, self.max_shape[0]) if self.max_shape[0] > 0 else h,
                    min(w, self.max_shape[-1]) if self.max_shape[-1] > 0 else w)
        return torch.cat([F.interpolate(m, (h, w), mode='bilinear', align_corners=False)
                          for m in maps], dim=1)
