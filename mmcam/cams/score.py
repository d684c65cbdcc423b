"""ScoreCAM with grad-cam's weights, scoring each distinct mask once.

grad-cam's ScoreCAM upsamples every channel of the target layer to the input size, scales it
to [0, 1], multiplies the input by it and scores each masked copy with a whole forward pass.
Channels often give the same mask: a channel that is constant (dead after a ReLU) scales to
all zeros, and a sparse channel of a small grid (7 x 7) that fires at one cell scales to the
same one-hot mask as every other channel firing only there. The same mask gives the same
masked input and the same score, so each distinct mask is scored once. Masks are also built
batch by batch (grad-cam holds all C masked copies of every image at once: 1.2 GB for 2048
channels at 224 px).

The C forward passes are the cost. They run with 4-D weights and inputs in channels-last
memory order, which oneDNN convolutions on the CPU run markedly faster (1.6-1.75x for a
ResNet-18 batch here); the weights are put back in their own order afterwards.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator, List

import numpy as np
import pytorch_grad_cam
import torch
import torch.nn.functional as F

from mmcam.cams.replay import records_kept


def distinct_masks(activations: np.ndarray) -> tuple:
    """(C, h, w) activations -> (representative channels, channel -> representative index).

    Two channels share a mask when their min-max scaled maps agree to 1e-6 (float32 rounding
    of the scaling itself is about 1e-7); scaling commutes with grad-cam's bilinear upsampling
    (align_corners=True keeps the grid values and interpolates between them), so equal small
    maps give equal masks.
    """
    flat = activations.reshape(activations.shape[0], -1).astype(np.float64)
    low, high = flat.min(axis=1, keepdims=True), flat.max(axis=1, keepdims=True)
    scaled = np.round((flat - low) / (high - low + 1e-8), 6)
    _, first, inverse = np.unique(scaled, axis=0, return_index=True, return_inverse=True)
    return first, inverse.reshape(-1)


@contextmanager
def channels_last(model: torch.nn.Module) -> Iterator[None]:
    """4-D parameters and buffers in channels-last order while open, then as they were."""
    tensors = [t for t in list(model.parameters()) + list(model.buffers()) if t.dim() == 4]
    saved = [t.data for t in tensors]
    with torch.no_grad():
        for t in tensors:
            t.data = t.data.contiguous(memory_format=torch.channels_last)
    try:
        yield
    finally:
        for t, data in zip(tensors, saved):
            t.data = data


class ScoreCAM(pytorch_grad_cam.ScoreCAM):
    """grad-cam's ScoreCAM (softmax over the scores of the input masked by each channel),
    each distinct mask scored once; masks built per batch."""

    batch_size = 32

    def get_cam_weights(self, input_tensor: torch.Tensor, target_layer: torch.nn.Module,
                        targets: List[Callable], activations: np.ndarray, grads) -> np.ndarray:
        size = input_tensor.shape[-2:]
        scores = []
        with torch.no_grad(), channels_last(self.model), records_kept(self):
            for image, target, acts in zip(input_tensor, targets, activations):
                channels, inverse = distinct_masks(acts)
                acts = torch.from_numpy(acts[channels]).to(self.device)
                distinct = []
                for start in range(0, len(channels), self.batch_size):
                    up = F.interpolate(acts[None, start:start + self.batch_size], size=size,
                                       mode='bilinear', align_corners=True)[0]
                    flat = up.flatten(1)
                    low = flat.min(dim=1).values[:, None, None]
                    high = flat.max(dim=1).values[:, None, None]
                    masks = (up - low) / (high - low + 1e-8)
                    masked = (image[None] * masks[:, None]).contiguous(
                        memory_format=torch.channels_last)
                    outputs = self.model(masked)
                    distinct.extend(float(target(o)) for o in outputs)
                scores.append(torch.tensor(distinct)[torch.from_numpy(inverse)])
        return torch.softmax(torch.stack(scores), dim=-1).numpy()
