"""A convolutional stem for Vision Transformers trained from scratch on small data.

A ViT's patch embedding is one large-stride convolution. Trained from scratch on the digit
scenes, where a digit covers a few of 64 tokens, mmpretrain's ViT sat at chance for 4 epochs.
A few 3 x 3 convolutions with the same overall stride (a "convolutional stem", Xiao et al.,
"Early Convolutions Help Transformers See Better", 2021) give tokens that already tell a digit
from the background; everything after the patch embedding (class token, position embeddings,
transformer layers) is mmpretrain's, unchanged.

mmpretrain's ``PatchEmbed`` builds its projection with ``build_conv_layer``, so the stem is used
through the backbone's ``patch_cfg``::

    backbone=dict(type='VisionTransformer', patch_size=12,
                  patch_cfg=dict(conv_type='mmcam.ConvStem'), ...)
"""
from __future__ import annotations

from typing import List, Union

from torch import nn

from mmcam.registry import MODELS


def _prime_factors(n: int) -> List[int]:
    factors, p = [], 2
    while n > 1:
        while n % p == 0:
            factors.append(p)
            n //= p
        p += 1
    return factors


@MODELS.register_module()
class ConvStem(nn.Sequential):
    """3 x 3 conv-BN-ReLU layers whose strides multiply to ``stride``, then a 1 x 1 projection.

    Takes ``build_conv_layer``'s arguments so that it can stand in for the patch embedding's
    convolution; ``kernel_size`` and ``padding`` are ignored (the stem pads itself), ``stride``
    sets the patch size. Widths double from ``out_channels / 2**(k-1)`` up to ``out_channels``.
    """

    def __init__(self, in_channels: int, out_channels: int,
                 kernel_size: Union[int, tuple] = 16, stride: Union[int, tuple] = 16,
                 padding: Union[int, tuple] = 0, dilation: int = 1, bias: bool = True,
                 convs_per_stage: int = 2) -> None:
        stride = stride[0] if isinstance(stride, tuple) else stride
        strides = _prime_factors(int(stride))
        if not strides or any(s > 3 for s in strides):
            raise ValueError(f'ConvStem needs a patch stride made of factors 2 and 3 (8, 12, 16, '
                             f'...), got {stride}. Set the backbone\'s patch_size to one of those.')
        layers: List[nn.Module] = []
        width = max(out_channels // 2 ** (len(strides) - 1), 8)
        c_in = in_channels
        for s in strides:
            for i in range(convs_per_stage):
                layers += [nn.Conv2d(c_in if i == 0 else width, width, 3, s if i == 0 else 1, 1,
                                     bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True)]
            c_in, width = width, min(width * 2, out_channels)
        layers.append(nn.Conv2d(c_in, out_channels, 1, bias=bias))
        super().__init__(*layers)
