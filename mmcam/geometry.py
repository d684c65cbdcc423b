"""Map activation maps from network-input pixels back onto the original image.

Test pipelines resize, crop and letterbox-pad an image before the model sees it. Every one of
those steps is an axis-aligned affine map, so their composition is one, too::

    x_input = x_original * scale_x + offset_x        (and the same for y)

with pixel centres at integer coordinates. :class:`InputGeometry` reads that map from the
metadata the pipeline itself records (``scale_factor``, ``pad_param``, a crop box) and warps a
map through it with OpenCV. Original pixels that fall outside the network input (cropped away)
are reported by :meth:`InputGeometry.seen_mask` so a picture can show them as unseen instead of
inventing values there.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Optional, Sequence, Tuple

import cv2
import numpy as np

_CROP_KEYS = ('crop_bbox', 'img_crop_bbox')


def _pair(value, name: str) -> Tuple[float, float]:
    arr = np.asarray(value, dtype=np.float64).reshape(-1)
    if arr.size == 1:
        return float(arr[0]), float(arr[0])
    if arr.size < 2:
        raise ValueError(f'{name}={value!r}: expected a number or a (w, h) pair.')
    return float(arr[0]), float(arr[1])


@dataclass(frozen=True)
class InputGeometry:
    """The affine map from original-image pixels to network-input pixels.

    Attributes:
        ori_hw: (height, width) of the original image.
        input_hw: (height, width) of the map to be warped (the network input it lives on).
        scale: (sx, sy) input pixels per original pixel.
        offset: (tx, ty) input coordinate of original pixel (0, 0).
    """
    ori_hw: Tuple[int, int]
    input_hw: Tuple[int, int]
    scale: Tuple[float, float]
    offset: Tuple[float, float]

    @classmethod
    def identity(cls, hw: Sequence[int]) -> 'InputGeometry':
        """The geometry of an image fed to the network as it is."""
        hw = (int(hw[0]), int(hw[1]))
        return cls(hw, hw, (1.0, 1.0), (0.0, 0.0))

    @classmethod
    def from_meta(cls, meta: Mapping, input_hw: Optional[Sequence[int]] = None) -> 'InputGeometry':
        """Read the map from a pipeline's results or a data sample's metainfo.

        Understood keys: ``ori_shape``; ``scale_factor`` (w, h) as mmcv's resizes write it;
        ``pad_param`` (top, bottom, left, right) as mmyolo's ``LetterResize`` writes it;
        ``crop_bbox``/``img_crop_bbox`` (x1, y1, x2, y2). Padding at the bottom/right (mmdet's
        ``Pad``, batch padding) does not move pixels and needs no key.

        Args:
            meta: the metainfo dict (``data_sample.metainfo``) or the pipeline results.
            input_hw: size of the map to warp; defaults to ``meta['img_shape']``.
        """
        if 'ori_shape' not in meta:
            raise KeyError(
                "The sample's metainfo has no 'ori_shape', so the map cannot be placed on the "
                'original image. Expected the metadata of an OpenMMLab test pipeline; add '
                "'ori_shape' to the meta_keys of its Pack transform.")
        ori_hw = tuple(int(v) for v in meta['ori_shape'][:2])
        if input_hw is None:
            input_hw = meta.get('batch_input_shape', meta.get('pad_shape', meta.get('img_shape')))
        input_hw = tuple(int(v) for v in input_hw[:2])
        sx, sy = _pair(meta.get('scale_factor', 1.0), 'scale_factor')
        # A resize maps pixel centres: x_in + 0.5 = (x_ori + 0.5) * s.
        tx, ty = 0.5 * (sx - 1.0), 0.5 * (sy - 1.0)
        for key in _CROP_KEYS:
            if meta.get(key) is not None:
                x1, y1 = np.asarray(meta[key], dtype=np.float64).reshape(-1)[:2]
                tx, ty = tx - x1, ty - y1
                break
        if meta.get('pad_param') is not None:
            top, _, left, _ = np.asarray(meta['pad_param'], dtype=np.float64).reshape(-1)[:4]
            tx, ty = tx + left, ty + top
        return cls(ori_hw, input_hw, (sx, sy), (tx, ty))

    def _matrix(self) -> np.ndarray:
        (sx, sy), (tx, ty) = self.scale, self.offset
        return np.array([[sx, 0.0, tx], [0.0, sy, ty]], dtype=np.float64)

    def to_original(self, input_map: np.ndarray, fill: float = 0.0,
                    interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
        """Warp a map (H_in x W_in [x C]) defined on the network input onto the original image.

        A map of another size than ``input_hw`` (a feature map, say) is first resized to
        ``input_hw``: its pixels are taken to cover the whole network input.
        """
        input_map = np.asarray(input_map)
        if input_map.dtype not in (np.float32, np.float64, np.uint8):
            input_map = input_map.astype(np.float32)
        h_in, w_in = self.input_hw
        if input_map.shape[:2] != (h_in, w_in):
            input_map = cv2.resize(input_map, (w_in, h_in), interpolation=interpolation)
        h, w = self.ori_hw
        return cv2.warpAffine(input_map, self._matrix(), (w, h),
                              flags=interpolation | cv2.WARP_INVERSE_MAP,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=fill)

    def seen_mask(self) -> np.ndarray:
        """Boolean (H, W) mask of the original pixels that lie inside the network input."""
        ones = np.ones(self.input_hw, dtype=np.float32)
        return self.to_original(ones, fill=0.0, interpolation=cv2.INTER_NEAREST) > 0.5

    def to_input_points(self, xy: np.ndarray) -> np.ndarray:
        """Original-image (x, y) points -> network-input coordinates (for tests and boxes)."""
        xy = np.asarray(xy, dtype=np.float64)
        return xy * np.asarray(self.scale) + np.asarray(self.offset)
