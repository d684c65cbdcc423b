"""AblationCAM for box AM: grad-cam's AblationCAM with two fixes that changed the maps.

* Channels are ablated to zero, as in the paper (:class:`ZeroAblationLayer`).
* Score changes below float32 noise count as none, and a layer the target does not depend on
  at all (a pyramid level other than the box's) is skipped (:class:`BoxAblationCAM`).
"""
from __future__ import annotations

import numpy as np
import torch
from pytorch_grad_cam import AblationCAM
from pytorch_grad_cam.ablation_layer import AblationLayer


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


class BoxAblationCAM(AblationCAM):
    """grad-cam's AblationCAM, with score changes below float32 noise counted as none.

    A level that a box's score does not depend on gives weights of pure rounding noise
    (a batch of ablated copies is computed with other kernels than the single original), and
    grad-cam would rescale that noise to a full-range map; so would the maximum over levels.
    """

    #: Relative score changes below this are rounding noise, not evidence.
    noise_floor = 1e-4
    #: Test first whether zeroing the whole layer changes any target's score; if not (a
    #: pyramid level other than the box's), skip its channel-by-channel loop.
    skip_unused_layers = True

    def get_cam_weights(self, input_tensor, target_layer, targets, activations, grads
                        ) -> np.ndarray:
        if self.skip_unused_layers and not self._layer_matters(input_tensor, target_layer,
                                                               targets):
            return np.zeros(activations.shape[:2], np.float32)
        weights = super().get_cam_weights(input_tensor, target_layer, targets, activations,
                                          grads)
        return np.where(np.abs(weights) < self.noise_floor, 0.0, weights).astype(np.float32)

    def _layer_matters(self, input_tensor, target_layer, targets) -> bool:
        handle = target_layer.register_forward_hook(lambda m, i, out: torch.zeros_like(out))
        try:
            with torch.no_grad():
                ablated = [float(t(o)) for t, o in zip(targets, self.model(input_tensor))]
        finally:
            handle.remove()
        with torch.no_grad():
            original = [float(t(o)) for t, o in zip(targets, self.model(input_tensor))]
        return any(abs(a - o) > self.noise_floor * max(abs(o), 1e-12)
                   for a, o in zip(ablated, original))
