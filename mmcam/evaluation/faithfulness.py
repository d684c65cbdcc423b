"""Faithfulness and sanity figures: does the model's score follow the map?

* deletion / insertion AUC (Petsiuk et al. 2018, RISE): the target's score while the most
  salient pixels are removed (replaced by the normalised input's zero, the dataset's mean
  colour) or inserted into a blurred copy, as the area under that curve;
* average drop and increase in confidence (Chattopadhay et al. 2018, Grad-CAM++): the score
  on the image times the map against the score on the image, through grad-cam's
  ``CamMultImageConfidenceChange``;
* ROAD (Rong et al. 2022): grad-cam's ``ROADCombined`` (least- minus most-relevant-first
  removal with noisy linear imputation, averaged over percentiles);
* the model-randomisation sanity check (Adebayo et al. 2018): :func:`randomised_copy`.

``score_fn`` everywhere maps a ``(B, 3, H, W)`` network input to ``(B, K)`` probabilities
(softmax of a classifier, confidences of a detector's boxes); a target is a column of it.
"""
from __future__ import annotations

import copy
from typing import Callable, List, Sequence, Tuple

import cv2
import numpy as np
import torch
from pytorch_grad_cam.metrics.cam_mult_image import CamMultImageConfidenceChange
from pytorch_grad_cam.metrics.road import ROADCombined
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from torch import nn

#: ROAD's removal percentiles (grad-cam's default is 10..90 in steps of 10). Each one costs
#: two noisy linear imputations (a sparse solve over the removed pixels, about 55 ms on a
#: 96 x 96 input): three keep ROAD at about half of an image's time.
ROAD_PERCENTILES = (25, 50, 75)


def blurred(inputs: torch.Tensor, sigma: float = 5.0) -> torch.Tensor:
    """A Gaussian-blurred copy of a (1, C, H, W) input (RISE's insertion start)."""
    img = inputs[0].detach().permute(1, 2, 0).cpu().numpy().astype(np.float32)
    out = cv2.GaussianBlur(img, (0, 0), sigma)
    out = out.reshape(img.shape)
    return torch.from_numpy(out).permute(2, 0, 1)[None].to(inputs)


@torch.no_grad()
def deletion_insertion(score_fn: Callable[[torch.Tensor], torch.Tensor], inputs: torch.Tensor,
                       saliency: np.ndarray, targets: Sequence[int], steps: int = 16,
                       batch: int = 34) -> Tuple[np.ndarray, np.ndarray]:
    """(deletion AUC, insertion AUC) per target, each in [0, 1] for probability scores.

    Args:
        score_fn: network input -> (B, K) scores.
        inputs: the (1, C, H, W) network input.
        saliency: (T, H, W) maps on the network input, one per target.
        targets: the score column each map explains.
        steps: curve points after the start (pixels change in ``1 / steps`` fractions).
        batch: perturbed inputs per forward pass.
    """
    _, _, h, w = inputs.shape
    base_del = torch.zeros_like(inputs)
    base_ins = blurred(inputs)
    dels, inss = [], []
    for cam, target in zip(saliency, targets):
        # Stable order: equal values keep row order, so every process ranks pixels alike.
        order = torch.from_numpy(np.argsort(-cam.reshape(-1), kind='stable').copy())
        counts = [round(k * h * w / steps) for k in range(steps + 1)]
        masks = torch.zeros(steps + 1, h * w, dtype=torch.bool)
        for k, n in enumerate(counts):
            masks[k, order[:n]] = True
        masks = masks.view(steps + 1, 1, h, w).to(inputs.device)
        deleted = torch.where(masks, base_del, inputs)
        inserted = torch.where(masks, inputs, base_ins)
        stacked = torch.cat([deleted, inserted])
        scores = torch.cat([score_fn(stacked[i:i + batch])[:, target]
                            for i in range(0, len(stacked), batch)]).float().cpu().numpy()
        for curve, out in ((scores[:steps + 1], dels), (scores[steps + 1:], inss)):
            out.append(float(np.trapezoid(curve, dx=1.0 / steps)))
    return np.asarray(dels), np.asarray(inss)


class _Scores(nn.Module):
    """grad-cam's metrics call ``model(x)``; this makes a score function one."""

    def __init__(self, score_fn: Callable[[torch.Tensor], torch.Tensor]) -> None:
        super().__init__()
        self.score_fn = score_fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.score_fn(x)


@torch.no_grad()
def confidence_change(score_fn, inputs: torch.Tensor, saliency: np.ndarray,
                      targets: Sequence[int], base_scores: Sequence[float]
                      ) -> Tuple[np.ndarray, np.ndarray]:
    """(drop in %, increase 0/1) per target: Grad-CAM++'s ``max(0, Y - O) / Y * 100`` and
    ``O > Y``, with O the score on the input times the map (grad-cam's
    ``CamMultImageConfidenceChange`` gives ``O - Y``)."""
    n = len(targets)
    change = CamMultImageConfidenceChange()(
        inputs.expand(n, -1, -1, -1), np.asarray(saliency, np.float32),
        [ClassifierOutputTarget(int(t)) for t in targets], _Scores(score_fn))
    change = np.asarray(change, np.float64).reshape(n)
    y = np.maximum(np.asarray(base_scores, np.float64), 1e-12)
    return np.maximum(-change, 0.0) / y * 100.0, (change > 0).astype(np.float64)


@torch.no_grad()
def road(score_fn, inputs: torch.Tensor, saliency: np.ndarray, targets: Sequence[int],
         percentiles: Sequence[int] = ROAD_PERCENTILES, seed: int = 0) -> np.ndarray:
    """ROAD per target (grad-cam's ``ROADCombined``: higher is better).

    The imputation adds noise from torch's generator: it is seeded from ``seed`` (the
    sample's index), so a figure does not depend on which process computed it.
    """
    n = len(targets)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        out = ROADCombined(percentiles=list(percentiles))(
            inputs.expand(n, -1, -1, -1).cpu(), np.asarray(saliency, np.float32),
            [ClassifierOutputTarget(int(t)) for t in targets],
            _Scores(lambda x: score_fn(x.to(inputs.device)).cpu()))
    return np.asarray(out, np.float64).reshape(n)


def last_stage(backbone: nn.Module) -> Tuple[str, nn.Module]:
    """(name, module) of a backbone's last stage: ResNet's last ``res_layers`` entry,
    mmyolo's last named stage, a transformer's last block, else its last child with weights."""
    names = getattr(backbone, 'res_layers', None) or getattr(backbone, 'layers', None)
    if isinstance(names, (list, tuple)) and names and isinstance(names[-1], str):
        return names[-1], getattr(backbone, names[-1])
    if isinstance(names, (nn.ModuleList, nn.Sequential)) and len(names):
        return f'layers.{len(names) - 1}', names[-1]
    children = [(n, m) for n, m in backbone.named_children()
                if any(True for _ in m.parameters())]
    if not children:
        raise ValueError(f'{type(backbone).__name__} has no stage with weights to randomise.')
    return children[-1]


def randomised_copy(model: nn.Module, seed: int = 0) -> Tuple[nn.Module, List[str]]:
    """A copy of a classifier or detector with its head and its backbone's last stage
    re-initialised (seeded: every process builds the same copy), and their names.

    The cascading randomisation of Adebayo et al. stopped after the top layers: a map that
    still looks the same without the learnt head and last stage does not explain them.
    """
    clone = copy.deepcopy(model).eval()
    head_name = 'head' if hasattr(clone, 'head') else 'bbox_head'
    stage_name, stage = last_stage(clone.backbone)
    parts = [(head_name, getattr(clone, head_name)), (f'backbone.{stage_name}', stage)]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for _, part in parts:
            for module in part.modules():
                if hasattr(module, 'reset_parameters'):  # BatchNorm's resets its statistics too
                    module.reset_parameters()
    return clone, [name for name, _ in parts]
