"""How well box AMs point at the detections of the trained demo detectors.

On held-out digit scenes (test split: digits and photographs never seen in training), for each
method and family:

* peak-in-box: the fraction of detected boxes whose own map peaks inside that box (and, with
  the 4 px tolerance of the classification localisation check, within 4 px of it);
* energy ratio: the share of the combined map's mass inside the detected boxes divided by the
  share of the image those boxes cover (a uniform map scores 1.0; higher is better).

    python tools/eval_boxam.py [--families yolov5 rtmdet] [--methods gradcam eigencam]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Dict, Sequence

import mmcv
import numpy as np

from mmcam.apis.boxam import BoxAMInferencer
from mmcam.apis.model_loader import LoadedModel
from mmcam.cams.box_methods import EXPLAIN_CHOICES, box_method_names
from mmcam.datasets.digit_scenes import DigitSceneGenerator

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FAMILIES = ('yolov5', 'yolov6', 'yolox', 'rtmdet')


def box_mask(bboxes: np.ndarray, hw: Sequence[int]) -> np.ndarray:
    """Boolean (H, W) union of boxes (x1, y1, x2, y2 in pixels)."""
    mask = np.zeros(hw, bool)
    for x1, y1, x2, y2 in bboxes:
        mask[int(np.floor(y1)):int(np.ceil(y2)), int(np.floor(x1)):int(np.ceil(x2))] = True
    return mask


def evaluate(config: str, checkpoint: str, method: str, num_scenes: int = 20, seed: int = 7,
             score_thr: float = 0.3, device: str = 'cpu', loaded: LoadedModel = None,
             **options) -> Dict[str, float]:
    """Metrics of one method on one detector over ``num_scenes`` held-out scenes."""
    loaded = loaded or LoadedModel(config, checkpoint, device=device)
    boxam = BoxAMInferencer(loaded, method, score_thr=score_thr, **options)
    gen = DigitSceneGenerator('test', seed=seed)
    inside, near, ratios, chance, boxes, start = [], [], [], [], 0, time.time()
    for _ in range(num_scenes):
        scene = gen.detection_scene()
        result = boxam(mmcv.rgb2bgr(scene.image))
        dets = result.detections
        boxes += len(dets)
        for box_map, (x1, y1, x2, y2) in zip(result.box_maps, dets.bboxes):
            y, x = np.unravel_index(np.argmax(box_map), box_map.shape)
            inside.append(x1 <= x + 0.5 <= x2 and y1 <= y + 0.5 <= y2)
            near.append(x1 - 4 <= x + 0.5 <= x2 + 4 and y1 - 4 <= y + 0.5 <= y2 + 4)
            # A peak placed at random lands in the box this often.
            chance.append((x2 - x1) * (y2 - y1) / box_map.size)
        if len(dets) and result.combined.sum() > 0:
            mask = box_mask(dets.bboxes, result.combined.shape)
            share = result.combined[mask].sum() / result.combined.sum()
            ratios.append(share / mask.mean())
    return dict(boxes=boxes, peak_in_box=float(np.mean(inside)) if inside else float('nan'),
                peak_within_4px=float(np.mean(near)) if near else float('nan'),
                peak_chance=float(np.mean(chance)) if chance else float('nan'),
                energy_ratio=float(np.mean(ratios)) if ratios else float('nan'),
                seconds_per_image=(time.time() - start) / num_scenes)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--families', nargs='+', default=list(FAMILIES), choices=FAMILIES)
    parser.add_argument('--methods', nargs='+', default=box_method_names())
    parser.add_argument('--explain', default='class', choices=EXPLAIN_CHOICES)
    parser.add_argument('--scenes', type=int, default=20, help='held-out scenes (default 20)')
    parser.add_argument('--seed', type=int, default=7, help='scene seed (default 7)')
    parser.add_argument('--ratio-channels-to-ablate', type=float, default=1.0)
    args = parser.parse_args(argv)
    print('| family | method | boxes | peak in own box (random: box area share) | within 4 px '
          '| energy ratio (uniform = 1) | s/image |')
    print('| --- | --- | ---: | ---: | ---: | ---: | ---: |')
    missing = []
    for family in args.families:
        config = os.path.join(REPO, 'configs', 'demo', f'det_{family}.py')
        checkpoint = os.path.join(REPO, 'demo', 'checkpoints', f'det_{family}.pth')
        if not os.path.isfile(checkpoint):
            missing.append(checkpoint)
            continue
        loaded = LoadedModel(config, checkpoint)
        for method in args.methods:
            row = evaluate(config, checkpoint, method, args.scenes, args.seed, loaded=loaded,
                           ratio_channels_to_ablate=args.ratio_channels_to_ablate,
                           **({} if args.explain == 'class' else {'explain': args.explain}))
            print(f'| {family} | {method} | {row["boxes"]} | {row["peak_in_box"]:.1%} '
                  f'({row["peak_chance"]:.1%}) | {row["peak_within_4px"]:.1%} | '
                  f'{row["energy_ratio"]:.2f} | {row["seconds_per_image"]:.2f} |', flush=True)
    for path in missing:
        print(f'skipped: {path} does not exist (train it with tools/train_demo.py)',
              file=sys.stderr)
    return 0


if __name__ == '__main__':
    sys.exit(main())
