"""mmyolo's box AM path (``mmyolo/utils/boxam_utils.py``, which its ``demo/boxam_vis_demo.py``
drives; the demo itself is not in the wheel) with the grad-cam >= 1.5 shim.

:func:`explain` does per image what the demo does: detect, keep boxes above the threshold,
build the method (for ``gradcam``: the head's training loss with the detections as ground
truth, gradients kept per pixel; for ``ablationcam``: grad-cam's AblationCAM with mmyolo's
DetAblationLayer, the box-matching score as target), compute one map for all boxes and draw
it with its boxes.
"""
from __future__ import annotations

from functools import partial
from typing import Tuple

import numpy as np

from benchmarks.reference import install_shim


def load(config: str, checkpoint: str, score_thr: float):
    """mmyolo's wrapper: it builds and loads the detector itself."""
    install_shim()
    from mmyolo.utils import register_all_modules
    from mmyolo.utils.boxam_utils import BoxAMDetectorWrapper
    from mmengine.config import Config
    from mmengine.logging import MessageHub
    register_all_modules()
    # As the demo does: some assigners read the epoch while computing the loss.
    MessageHub.get_current_instance().runtime_info['epoch'] = 0
    return BoxAMDetectorWrapper(Config.fromfile(config), checkpoint, score_thr, device='cpu')


def explain(wrapper, image: np.ndarray, method: str, target_layer: str, score_thr: float,
            topk: int = -1, batch_size: int = 1) -> Tuple[np.ndarray, np.ndarray]:
    """One map for ``image`` (BGR) and the picture, as mmyolo's demo makes them."""
    from mmyolo.utils.boxam_utils import (BoxAMDetectorVisualizer, DetAblationLayer,
                                          DetBoxScoreTarget, GradCAM, reshape_transform)
    import pytorch_grad_cam
    from mmcam.utils.modules import find_module
    layers = [find_module(wrapper.detector, target_layer)]
    grad = method == 'gradcam'
    method_class = GradCAM if grad else pytorch_grad_cam.AblationCAM
    extra = None if grad else dict(batch_size=batch_size, ratio_channels_to_ablate=1.0,
                                   ablation_layer=DetAblationLayer())
    visualizer = BoxAMDetectorVisualizer(
        method_class, wrapper, layers,
        reshape_transform=partial(reshape_transform, max_shape=(-1, -1), is_need_grad=grad),
        is_need_grad=grad, extra_params=extra)
    wrapper.need_loss(False)
    wrapper.set_input_data(image)
    result = wrapper()[0]
    pred = result.pred_instances
    pred = pred[pred.scores > score_thr]
    if topk > 0:
        pred = pred[:topk]
    targets = [DetBoxScoreTarget(pred_instance=pred, device='cpu',
                                 ignore_loss_params=['loss_obj'])]  # the demo's YOLOv5 setting
    if grad:
        wrapper.need_loss(True)
        wrapper.set_input_data(image, pred_instances=pred)
        visualizer.switch_activations_and_grads(wrapper)
    try:
        grayscale = visualizer(image, targets=targets)
    finally:
        if grad:
            wrapper.need_loss(False)
            visualizer.switch_activations_and_grads(wrapper)
        visualizer.cam.activations_and_grads.release()
    picture = visualizer.show_am(image, pred.numpy(), grayscale, with_norm_in_bboxes=False)
    return grayscale, picture
