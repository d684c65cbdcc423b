"""Feature maps drawn on the image they came from.

A layer's feature map lives on the network input. A detector's letterbox pipeline shrank and
padded the image first, so stretching the map over the original image (what mmengine's
``Visualizer.draw_featmap`` does) shifts and squashes it. Here a map goes through the
pipeline's own geometry instead (:class:`mmcam.geometry.InputGeometry`): cropped of its
padding, resized and placed on the original pixels.

The steps, each a small function a test can check on its own::

    layer output -> one (C, h, w) map per pyramid level           split_levels
    (C, h, w)    -> the maps to show (mean, max channel, top-k)    select_channels
    map          -> display pixels (original image or input)      to_display
    map          -> coloured overlay                               overlay_heatmap
    tiles        -> one picture                                    arrange
"""
from __future__ import annotations

import math
import warnings
from typing import Any, Callable, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np
import torch

from mmcam.geometry import InputGeometry
from mmcam.visualization.panels import arrange, draw_boxes, grey_unseen

REDUCTIONS = ('squeeze_mean', 'select_max')
Featmap = Union[torch.Tensor, np.ndarray]
_GREY = 200  # background of empty grid places and gaps


# -- layer outputs -> maps ----------------------------------------------------------------
def split_levels(name: str, output: Any, index: int = 0,
                 tokens_to_grid: Optional[Callable[[torch.Tensor], torch.Tensor]] = None
                 ) -> List[Tuple[str, torch.Tensor]]:
    """One ``(title, (C, h, w) tensor)`` per feature map in a layer's output.

    A pyramid backbone/neck returns a tuple of (B, C, h, w) maps, a head returns nested tuples;
    every 4-D tensor inside becomes a level, titled ``name[i]`` (``name[i][j]`` when nested).
    ``index`` picks the image of the batch. Transformer tokens (B, L, C) become a level when
    ``tokens_to_grid`` (e.g. :class:`mmcam.cams.reshape.TokenReshape`) turns them into a grid.

    Raises:
        ValueError: if the output holds no feature map (e.g. a classifier's pooled vector).
    """
    levels: List[Tuple[str, torch.Tensor]] = []
    shapes: List[str] = []

    def visit(title: str, value: Any) -> None:
        if torch.is_tensor(value):
            if value.dim() == 3 and tokens_to_grid is not None:
                value = tokens_to_grid(value)
            if value.dim() == 4:
                levels.append((title, value[index].detach().float().cpu()))
            else:
                shapes.append('x'.join(map(str, value.shape)))
        elif isinstance(value, (tuple, list)):
            for i, item in enumerate(value):
                visit(f'{title}[{i}]', item)
        elif isinstance(value, dict):
            for key, item in value.items():
                visit(f'{title}.{key}', item)

    visit(name, output)
    if not levels:
        found = ', '.join(shapes) if shapes else type(output).__name__
        raise ValueError(
            f'Layer {name!r} outputs {found}, not a (B, C, H, W) feature map or (B, L, C) '
            'tokens; pick a convolutional layer, stage, neck or transformer block '
            '(--preview-model lists the layers).')
    return levels


def as_chw(featmap: Featmap) -> torch.Tensor:
    """(C, h, w) float CPU tensor from a tensor or array of shape (C, h, w) or (1, C, h, w)."""
    if isinstance(featmap, np.ndarray):
        featmap = torch.from_numpy(featmap)
    if not torch.is_tensor(featmap):
        raise TypeError(f'featmap is a {type(featmap).__name__}; expected a torch.Tensor or '
                        'numpy array of shape (C, H, W).')
    if featmap.dim() == 4 and featmap.shape[0] == 1:
        featmap = featmap[0]
    if featmap.dim() != 3:
        raise ValueError(f'featmap has shape {tuple(featmap.shape)}; expected (C, H, W) '
                         '(one image of a batch).')
    return featmap.detach().float().cpu()


def content_fraction(geometry: InputGeometry, feat_hw: Sequence[int]) -> np.ndarray:
    """Fraction of each feature-map cell that covers the original image rather than padding.

    Cells are laid on the network input as :func:`fit_to_input` lays them. Used to rank
    channels by what they do on the image, not on the letterbox bars.
    """
    (sx, sy), (tx, ty) = geometry.scale, geometry.offset

    def axis(cells: int, size_in: int, s: float, t: float, size_ori: int) -> np.ndarray:
        # Original pixel centres x -> x * s + t; its edges are half a pixel either side.
        lo, hi = t - 0.5 * s + 0.5, t + (size_ori - 0.5) * s + 0.5
        step = _cell_size(cells, size_in)
        edges = np.arange(cells + 1) * step
        return np.clip(np.minimum(edges[1:], hi) - np.maximum(edges[:-1], lo), 0, None) / step

    h, w = int(feat_hw[0]), int(feat_hw[1])
    return np.outer(axis(h, geometry.input_hw[0], sy, ty, geometry.ori_hw[0]),
                    axis(w, geometry.input_hw[1], sx, tx, geometry.ori_hw[1]))


def suggest_arrangement(k: int) -> Tuple[int, int]:
    """A near-square (rows, cols) grid with room for ``k`` maps."""
    cols = max(1, math.ceil(math.sqrt(k)))
    return max(1, math.ceil(k / cols)), cols


def check_arrangement(topk: int, arrangement: Sequence[int]) -> Tuple[int, int]:
    """Validate a (rows, cols) grid for ``topk`` maps; returns it as a tuple of ints."""
    if len(arrangement) != 2 or min(int(v) for v in arrangement) < 1:
        raise ValueError(f'arrangement {tuple(arrangement)} is not a grid; expected two '
                         'positive numbers ROWS COLS, e.g. --arrangement 2 3.')
    rows, cols = int(arrangement[0]), int(arrangement[1])
    if topk > 0 and rows * cols < topk:
        r, c = suggest_arrangement(topk)
        raise ValueError(f'arrangement {rows}x{cols} has {rows * cols} places for {topk} maps; '
                         f'expected ROWS * COLS >= topk, e.g. --arrangement {r} {c} '
                         'or a smaller --topk.')
    return rows, cols


def select_channels(featmap: torch.Tensor,
                    channel_reduction: Optional[str] = 'squeeze_mean',
                    topk: int = 20,
                    weights: Optional[np.ndarray] = None) -> List[Tuple[str, np.ndarray]]:
    """The maps to show from a (C, h, w) feature map, as ``(label, h x w [x 3] array)``.

    * ``'squeeze_mean'``: the mean over channels;
    * ``'select_max'``: the channel with the highest mean activation;
    * ``None`` and ``topk > 0``: the ``topk`` most active channels, most active first
      (clamped to C with a warning);
    * ``None`` and ``topk <= 0``: a 1- or 3-channel map as it is (3 channels as an RGB picture).

    Activation is the mean over the cells, weighted by ``weights`` (see
    :func:`content_fraction`) when given, so letterbox padding does not decide the ranking.
    """
    featmap = as_chw(featmap)
    channels = featmap.shape[0]
    if channel_reduction is not None and channel_reduction not in REDUCTIONS:
        raise ValueError(f'channel_reduction={channel_reduction!r} is not supported; expected '
                         "'squeeze_mean', 'select_max' or None (show the top-k channels).")
    if channel_reduction is None and topk <= 0:
        if channels == 1:
            return [('', featmap[0].numpy())]
        if channels == 3:
            return [('', featmap.permute(1, 2, 0).numpy())]
        raise ValueError(
            f'A feature map with {channels} channels cannot be shown as it is (topk <= 0 '
            'shows 1- or 3-channel maps only); use --channel-reduction squeeze_mean or '
            'select_max, or --topk K with K > 0.')
    if channel_reduction == 'squeeze_mean':
        return [(f'mean of {channels} channels', featmap.mean(dim=0).numpy())]
    if weights is not None and float(weights.sum()) > 0:
        w = torch.as_tensor(weights, dtype=featmap.dtype)
        activation = (featmap * w).sum(dim=(1, 2)) / w.sum()
    else:
        activation = featmap.mean(dim=(1, 2))
    if channel_reduction == 'select_max':
        best = int(torch.argmax(activation))
        return [(f'channel {best}', featmap[best].numpy())]
    if topk > channels:
        warnings.warn(f'topk={topk} is more than the {channels} channels of this feature map; '
                      f'showing all {channels}.', stacklevel=2)
    k = min(topk, channels)
    order = torch.argsort(activation, descending=True)[:k].tolist()
    return [(f'channel {c}', featmap[c].numpy()) for c in order]


# -- maps -> pictures -----------------------------------------------------------------------
def _cell_size(cells: int, extent: int) -> float:
    """Input pixels per feature-map cell (see :func:`fit_to_input`)."""
    stride = 2 ** round(math.log2(extent / cells)) if extent >= cells else 0
    if (cells - 1) * stride < extent < cells * stride:
        return float(stride)
    return extent / cells


def fit_to_input(fmap: np.ndarray, input_hw: Sequence[int]) -> np.ndarray:
    """Resize a map to the network input it was computed from.

    A layer of stride s gives ceil(H / s) cells, which cover a little more than the input when
    H is not a multiple of s (mmdet's P6/P7 levels: 3 cells of 64 px for a 160 px input). The
    map is then resized to cells * s and the overhang cut off, instead of being squeezed into
    H. Strides are taken as powers of two; any other map is stretched over the input.
    """
    size = [round(cells * _cell_size(cells, extent))
            for cells, extent in zip(fmap.shape[:2], input_hw[:2])]
    if tuple(fmap.shape[:2]) != tuple(size):
        fmap = cv2.resize(fmap, (size[1], size[0]), interpolation=cv2.INTER_LINEAR)
    return np.ascontiguousarray(fmap[:int(input_hw[0]), :int(input_hw[1])])


def to_display(fmap: np.ndarray,
               geometry: Optional[InputGeometry] = None,
               out_hw: Optional[Sequence[int]] = None
               ) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """Bring a feature map to display pixels; returns ``(map, seen mask or None)``.

    With ``geometry`` the map is put on the original image (padding cropped off, resize
    undone); without it, it is stretched over ``out_hw`` (or left as it is).
    """
    fmap = np.ascontiguousarray(fmap, dtype=np.float32)
    if geometry is not None:
        return geometry.to_original(fit_to_input(fmap, geometry.input_hw)), geometry.seen_mask()
    if out_hw is not None and tuple(fmap.shape[:2]) != tuple(out_hw[:2]):
        fmap = cv2.resize(fmap, (int(out_hw[1]), int(out_hw[0])), interpolation=cv2.INTER_LINEAR)
    return fmap, None


def normalise(fmap: np.ndarray, mask: Optional[np.ndarray] = None) -> np.ndarray:
    """Min-max scale to [0, 1] over the pixels in ``mask`` (all when None)."""
    values = fmap[mask] if mask is not None and mask.any() else fmap
    lo, hi = float(values.min()), float(values.max())
    if not np.isfinite(lo) or not np.isfinite(hi) or hi - lo < 1e-12:
        return np.zeros_like(fmap, dtype=np.float32)
    return np.clip((fmap - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)


def colorize(map01: np.ndarray) -> np.ndarray:
    """RGB uint8 picture of a [0, 1] map: JET colours for one channel, as-is for three."""
    scaled = (np.clip(map01, 0, 1) * 255).round().astype(np.uint8)
    if scaled.ndim == 3:
        return np.ascontiguousarray(scaled)
    return cv2.cvtColor(cv2.applyColorMap(scaled, cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)


def overlay_heatmap(map01: np.ndarray,
                    image: Optional[np.ndarray] = None,
                    alpha: float = 0.5,
                    seen_mask: Optional[np.ndarray] = None) -> np.ndarray:
    """Blend a coloured [0, 1] map over an RGB uint8 image of the same size.

    Pixels outside ``seen_mask`` (cropped away by the pipeline, never seen by the model) are
    drawn as a darkened grey image rather than coloured, as :meth:`CAMVisualizer.draw_cam` does.
    """
    heat = colorize(map01)
    if image is None:
        drawn = heat
    else:
        drawn = cv2.addWeighted(image, 1.0 - alpha, heat, alpha, 0)
    return grey_unseen(drawn, image if image is not None else heat, seen_mask)


def add_caption(image: np.ndarray, text: str) -> np.ndarray:
    """The image with a white bar above it holding ``text`` (shrunk to fit the width)."""
    w = image.shape[1]
    bar = max(14, round(w / 22))
    scale = bar / 32
    (tw, _), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    if tw > w - 4:
        scale *= (w - 4) / tw
    strip = np.full((bar, w, 3), 255, np.uint8)
    cv2.putText(strip, text, (2, bar - max(3, bar // 4)), cv2.FONT_HERSHEY_SIMPLEX, scale,
                (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([strip, image], axis=0)


def _rgb(image: Optional[np.ndarray]) -> Optional[np.ndarray]:
    if image is None:
        return None
    image = np.asarray(image)
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    if image.dtype != np.uint8:
        raise TypeError(f'overlaid_image is {image.dtype}; expected an RGB uint8 image.')
    return np.ascontiguousarray(image[..., :3])


def draw_featmap(featmap: Union[Featmap, Sequence[Featmap]],
                 overlaid_image: Optional[np.ndarray] = None,
                 channel_reduction: Optional[str] = 'squeeze_mean',
                 topk: int = 20,
                 arrangement: Tuple[int, int] = (4, 5),
                 resize_shape: Optional[Tuple[int, int]] = None,
                 alpha: float = 0.5,
                 geometry: Optional[InputGeometry] = None,
                 boxes: Optional[np.ndarray] = None,
                 box_labels: Optional[Sequence[str]] = None) -> np.ndarray:
    """Draw a (C, H, W) feature map, aligned with the image, as an RGB uint8 picture.

    The first seven arguments are those of mmengine's ``Visualizer.draw_featmap`` with the
    same meanings; the differences are that every one of the top-k maps is shown (missing
    ones are an error, not a silent drop), ``topk`` larger than C is clamped with a warning,
    and a bad argument raises a ValueError that says what to change.

    Args:
        featmap: (C, H, W) tensor/array, or a sequence of them (pyramid levels), drawn as
            captioned panels on a near-square grid.
        overlaid_image: RGB uint8 image to draw on: the original image when ``geometry`` is
            given, otherwise any image the map is stretched over.
        resize_shape: (H, W) of each drawn map (the image is resized with it).
        geometry: the test pipeline's map from original to network-input pixels (a
            :class:`~mmcam.apis.Sample` has it). The map is then cropped of padding and
            placed on the original image; channels are ranked on the image area only.
        boxes: (N, 4) boxes in the pixels of ``overlaid_image`` (original pixels with
            ``geometry``), drawn on every map; ``box_labels`` are their captions.
    """
    if isinstance(featmap, (list, tuple)):
        return draw_levels([(f'level {i}', f) for i, f in enumerate(featmap)], overlaid_image,
                           channel_reduction, topk, arrangement, resize_shape, alpha,
                           geometry=geometry, boxes=boxes, box_labels=box_labels)
    fmap = as_chw(featmap)
    image = _rgb(overlaid_image)
    if geometry is not None and image is not None and tuple(image.shape[:2]) != tuple(
            geometry.ori_hw):
        raise ValueError(f'overlaid_image is {image.shape[:2]} but the geometry describes an '
                         f'original image of {geometry.ori_hw}; pass the original image '
                         '(Sample.image) with its Sample.geometry.')
    if geometry is None and image is not None and tuple(image.shape[:2]) != tuple(fmap.shape[1:]):
        warnings.warn(f'The {tuple(fmap.shape[1:])} feature map is stretched over the '
                      f'{image.shape[:2]} image; pass geometry= (Sample.geometry) to undo the '
                      "test pipeline's resize and padding.", stacklevel=2)
    grid = channel_reduction is None and topk > 0
    weights = content_fraction(geometry, fmap.shape[1:]) if geometry is not None else None
    maps = select_channels(fmap, channel_reduction, topk, weights)
    if grid:
        rows, cols = check_arrangement(len(maps), arrangement)

    box_xy = None if boxes is None else np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    out_hw = image.shape[:2] if image is not None else None
    tiles = []
    for label, m in maps:
        shown, seen = to_display(m, geometry, out_hw)
        tile_img = image
        tile_boxes = box_xy
        if resize_shape is not None:
            h, w = int(resize_shape[0]), int(resize_shape[1])
            fy, fx = h / shown.shape[0], w / shown.shape[1]
            shown = cv2.resize(shown, (w, h), interpolation=cv2.INTER_LINEAR)
            if seen is not None:
                seen = cv2.resize(seen.astype(np.uint8), (w, h),
                                  interpolation=cv2.INTER_NEAREST).astype(bool)
            if tile_img is not None:
                tile_img = cv2.resize(tile_img, (w, h), interpolation=cv2.INTER_AREA)
            if tile_boxes is not None:
                tile_boxes = tile_boxes * np.array([fx, fy, fx, fy])
        tile = overlay_heatmap(normalise(shown, seen), tile_img, alpha, seen)
        if tile_boxes is not None and len(tile_boxes):
            tile = draw_boxes(tile, tile_boxes, box_labels)
        tiles.append(add_caption(tile, label) if grid else tile)
    if not grid:
        return tiles[0]
    return arrange(tiles, rows, cols, fill=_GREY)


def draw_levels(levels: Sequence[Tuple[str, Featmap]],
                overlaid_image: Optional[np.ndarray] = None,
                channel_reduction: Optional[str] = 'squeeze_mean',
                topk: int = 20,
                arrangement: Tuple[int, int] = (4, 5),
                resize_shape: Optional[Tuple[int, int]] = None,
                alpha: float = 0.5,
                **kwargs) -> np.ndarray:
    """Draw several named feature maps (layers, pyramid levels) as captioned panels.

    Each panel is :func:`draw_featmap` of one map, captioned ``title CxHxW``; the panels go on
    a near-square grid, as mmyolo's demo arranges them.
    """
    if not levels:
        raise ValueError('No feature maps to draw; expected at least one (title, map) pair.')
    panels = []
    for title, fmap in levels:
        fmap = as_chw(fmap)
        drawn = draw_featmap(fmap, overlaid_image, channel_reduction, topk, arrangement,
                             resize_shape, alpha, **kwargs)
        shape = 'x'.join(str(v) for v in fmap.shape)
        panels.append(add_caption(drawn, f'{title}  {shape}'))
    return arrange(panels, *suggest_arrangement(len(panels)), gap=6, fill=_GREY)

