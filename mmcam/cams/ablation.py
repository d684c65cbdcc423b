"""AblationCAM: grad-cam's maps, computed by re-running only what follows the target layer.

* :class:`AblationCAM` (classification, under grad-cam's name): the same ablated copies as
  grad-cam's AblationCAM with the same ablation layer, but the layers before the target are
  run once, not once per batch of copies (:func:`mmcam.cams.replay.replayed_prefix`), and the
  rest runs on batches of up to :attr:`AblationCAM.replay_batch` copies.

For box AM, grad-cam's AblationCAM with two fixes that changed the maps:

* Channels are ablated to zero, as in the paper (:class:`ZeroAblationLayer`).
* Score changes below float32 noise count as none, and a layer the target does not depend on
  at all (a pyramid level other than the box's) is skipped (:class:`BoxAblationCAM`).
* Each channel is ablated once for all the boxes of an image, not once per box.
"""
from __future__ import annotations

from typing import Callable, List, Optional

import numpy as np
import pytorch_grad_cam
import torch
import tqdm
from pytorch_grad_cam.ablation_layer import AblationLayer

from mmcam.cams.replay import records_kept, replayed_prefix

# Box AM keeps grad-cam's class (its detector adapter has its own neck replay).
GradCAMAblationCAM = pytorch_grad_cam.AblationCAM


class ZeroAblationLayer(AblationLayer):
    """grad-cam's AblationLayer, ablating a channel by setting it to zero (as in the paper).

    grad-cam's own layer writes ``min(output) - 1e7`` and re-reads the minimum after every
    channel, so the value depends on the position in the batch (``--batch-size`` changed the
    map) and the huge values saturate every detection score after SiLU activations.
    """

    def __call__(self, x):
        output = self.activations
        for i in range(output.size(0)):
            output[i, self.indices[i]] = 0
        return output

    def activations_to_be_ablated(self, activations, ratio_channels_to_ablate: float = 1.0):
        """Ablate a fraction ``r`` of the channels, each once.

        grad-cam picks the ``r`` most and the ``r`` least object-like channels (by its SVD
        projection), which is 2r of them and repeats channels when r > 0.5; asking it for
        r/2 of each gives r of them, all different.
        """
        if ratio_channels_to_ablate >= 1.0:
            return super().activations_to_be_ablated(activations, 1.0)
        return super().activations_to_be_ablated(activations, ratio_channels_to_ablate / 2)


class BoxAblationCAM(GradCAMAblationCAM):
    """AblationCAM for the boxes of one image: each channel is ablated (set to zero) once, and
    every box's score is read from that one ablated copy.

    The rows of the input are copies of the same image, one per box (target ``i`` reads column
    ``i`` of the score module's output, which scores every box). grad-cam ablates every channel
    once per row, so N boxes cost N times the ablated copies for the same scores. Score changes
    below float32 noise count as none, and a box whose score does not change when the whole
    layer is zeroed (a pyramid level other than its own) gets a zero map: grad-cam would rescale
    the rounding noise of a batch computed with other kernels to a full-range map.
    """

    #: Relative score changes below this are rounding noise, not evidence.
    noise_floor = 1e-4

    def get_cam_weights(self, input_tensor, target_layer, targets, activations, grads
                        ) -> np.ndarray:
        image = input_tensor[:1]
        if not torch.equal(input_tensor, image.expand_as(input_tensor)):
            raise ValueError('BoxAblationCAM explains the boxes of one image: every row of the '
                             'input must be the same image.')
        # (boxes, channels); the activations may have one row for all (the neck replay)
        weights = np.zeros((len(targets), activations.shape[1]), np.float32)
        with torch.no_grad(), records_kept(self):
            kept = []
            original = self._scores(image, target_layer, targets, kept.append)[0]
            depends = self._changed(self._scores(image, target_layer, targets,
                                                 torch.zeros_like)[0], original)
            if not depends.any():
                return weights
            output = kept[0]
            channels = np.asarray(self.ablation_layer.activations_to_be_ablated(
                activations[0], self.ratio_channels_to_ablate))
            for start in tqdm.tqdm(range(0, len(channels), self.batch_size)):
                chunk = torch.as_tensor(channels[start:start + self.batch_size])
                ablated = output.expand(len(chunk), *output.shape[1:]).clone()
                ablated[torch.arange(len(chunk)), chunk] = 0
                scores = self._scores(image.expand(len(chunk), *image.shape[1:]),
                                      target_layer, targets, lambda out: ablated)
                drop = (original - scores) / original
                weights[:, chunk.numpy()] = np.where(self._changed(scores, original), drop, 0).T
        weights[~depends] = 0
        return weights

    def _scores(self, inputs: torch.Tensor, layer: torch.nn.Module, targets,
                replace: Callable) -> np.ndarray:
        """``(len(inputs), len(targets))`` scores, the layer's output passed to ``replace``
        (whatever it returns, if not None, is used instead)."""
        handle = layer.register_forward_hook(lambda module, args, out: replace(out))
        try:
            outputs = self.model(inputs)
        finally:
            handle.remove()
        return np.float32([[float(t(o)) for t in targets] for o in outputs])

    def _changed(self, scores: np.ndarray, original: np.ndarray) -> np.ndarray:
        return np.abs(scores - original) > self.noise_floor * np.maximum(np.abs(original), 1e-12)


class AblationCAM(GradCAMAblationCAM):
    """grad-cam's AblationCAM (same ablation layer, same ablated copies, same weights), with
    the layers before the target run once per image instead of once per batch of copies.

    grad-cam's ``batch_size`` still sets how the copies are grouped for the ablation layer (its
    default layer's ablation value depends on a channel's place in its group); the copies of
    :attr:`replay_batch` of them go through the rest of the model at once.
    """

    #: Ablated copies per replayed forward pass (bounded by :attr:`replay_bytes` of copies).
    replay_batch = 256
    replay_bytes = 2 ** 28

    def __init__(self, model: torch.nn.Module, target_layers: List[torch.nn.Module],
                 reshape_transform: Optional[Callable] = None,
                 ablation_layer: Optional[torch.nn.Module] = None, batch_size: int = 32,
                 ratio_channels_to_ablate: float = 1.0) -> None:
        # Zero, as in the paper, unless told otherwise. grad-cam's default layer writes
        # min - 1e7 (times the copy's place in its group) when the minimum is not 0: on a
        # ReLU output both are 0 and the maps are the same; elsewhere grad-cam's scores are
        # float32 rounding of 1e7-sized logits (its map then changes with batch_size).
        super().__init__(model, target_layers, reshape_transform=reshape_transform,
                         ablation_layer=ablation_layer or ZeroAblationLayer(),
                         batch_size=batch_size,
                         ratio_channels_to_ablate=ratio_channels_to_ablate)

    def get_cam_weights(self, input_tensor: torch.Tensor, target_layer: torch.nn.Module,
                        targets: List[Callable], activations: np.ndarray, grads) -> np.ndarray:
        layer = self.ablation_layer
        weights, originals = [], []
        with torch.no_grad(), records_kept(self):
            for index, (target, image) in enumerate(zip(targets, input_tensor)):
                image = image[None]
                with replayed_prefix(self.model, target_layer, image, _same_logits) as replay:
                    originals.append(float(target(replay.logits[0])))
                    channels = layer.activations_to_be_ablated(activations[index],
                                                               self.ratio_channels_to_ablate)
                    scores = self._ablated_scores(replay, image, target, len(channels))
                weights.extend(self.assemble_ablation_scores(
                    scores, originals[-1], channels, activations.shape[1]))
        weights = np.float32(weights).reshape(activations.shape[:2])
        originals = np.float32(originals)[:, None]
        return (originals - weights) / originals

    def _ablated_scores(self, replay, image: torch.Tensor, target: Callable, count: int
                        ) -> List[float]:
        """The target's score with each channel ablated: the ablation layer builds grad-cam's
        groups of ``batch_size`` copies; groups are joined into one replayed batch."""
        layer, activation = self.ablation_layer, replay.activation
        per_copy = activation[0].numel() * activation.element_size()
        limit = max(self.batch_size, min(self.replay_batch, self.replay_bytes // per_copy))
        scores: List[float] = []
        pending: List[torch.Tensor] = []

        def flush() -> None:
            if pending:
                outputs = replay.run(torch.cat(pending), image)
                scores.extend(float(target(o)) for o in outputs)
                pending.clear()

        done = 0
        while done < count:
            size = min(self.batch_size, count - done)
            layer.set_next_batch(input_batch_index=0, activations=activation,
                                 num_channels_to_ablate=size)
            pending.append(layer(None))
            layer.indices = layer.indices[size:]
            done += size
            if sum(p.shape[0] for p in pending) >= limit:
                flush()
        flush()
        return scores


def _same_logits(replayed: torch.Tensor, recorded: torch.Tensor) -> bool:
    """A replay that does not give the recorded logits back is not used."""
    return replayed.shape == recorded.shape and torch.allclose(replayed, recorded, rtol=1e-4,
                                                               atol=1e-5)
