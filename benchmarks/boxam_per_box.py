"""Box AM with a gradient method: one forward pass and one backward pass per box (mmcam) vs
grad-cam's way, one copy of the image per box through a whole forward and backward pass.

Both run side by side in one process, alternating, with the same method class
(``SpatialGradCAM``, box AM's default ``gradcam``), layers and per-box scores; the maps of the
two are compared. Reported: seconds per image for the maps (detection excluded) and per box.

    python benchmarks/boxam_per_box.py [--repeats 3] [--families yolov5 rtmdet] [--yolov5-s]

``--yolov5-s`` adds YOLOv5-s from mmyolo's shipped config at 640 px (random weights, the
prediction biases raised so that it reports boxes).
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
import torch
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

from mmcam.apis.boxam import BoxAMInferencer
from mmcam.apis.model_loader import LoadedModel
from mmcam.cams.spatial import SpatialGradCAM

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FAMILIES = ('yolov5', 'yolov6', 'yolox', 'rtmdet')


def gradcam_batched(boxam: BoxAMInferencer, sample, dets) -> np.ndarray:
    """grad-cam's own loop: one input copy per box, 4 boxes per forward/backward pass."""
    scorer = boxam.adapter.box_scores(dets, 'logit')
    maps = []
    with SpatialGradCAM(scorer, boxam.layers, reshape_transform=boxam.reshape) as cam:
        for start in range(0, len(dets), 4):
            ids = list(range(start, min(start + 4, len(dets))))
            inputs = sample.inputs.expand(len(ids), -1, -1, -1).contiguous()
            maps.extend(cam(inputs, targets=[ClassifierOutputTarget(i) for i in ids]))
    return np.stack(maps)


def yolov5_s() -> LoadedModel:
    from mmengine.config import Config
    import mmyolo
    path = os.path.join(os.path.dirname(mmyolo.__file__), '.mim', 'configs', 'yolov5',
                        'yolov5_s-v61_syncbn_fast_8xb16-300e_coco.py')
    torch.manual_seed(0)
    loaded = LoadedModel(Config.fromfile(path))
    hm = loaded.model.bbox_head.head_module
    with torch.no_grad():
        for conv in hm.convs_pred:
            torch.nn.init.normal_(conv.weight, std=conv.in_channels ** -0.5)
            bias = conv.bias.view(hm.num_base_priors, -1)
            bias[:, 4], bias[:, 5:], bias[:, 5] = 2.0, -4.0, 2.0  # objectness, class 0
    return loaded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--families', nargs='+', default=list(FAMILIES), choices=FAMILIES)
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--yolov5-s', action='store_true')
    parser.add_argument('--image', default=os.path.join(REPO, 'demo', 'digits_det.png'))
    args = parser.parse_args()
    models = [(f, LoadedModel(os.path.join(REPO, 'configs', 'demo', f'det_{f}.py'),
                              os.path.join(REPO, 'demo', 'checkpoints', f'det_{f}.pth')), 0.3, -1)
              for f in args.families]
    if args.yolov5_s:
        models.append(('yolov5-s 640 px', yolov5_s(), 0.3, 8))
    print(f'box AM gradcam (per pixel) of the detections in {os.path.basename(args.image)}, '
          f'{torch.get_num_threads()} threads, {args.repeats} alternating runs, median seconds:')
    print('| model | boxes | grad-cam: a copy per box | mmcam: 1 forward + N backward | ratio '
          '| per box (mmcam) | max map difference |')
    print('| --- | ---: | ---: | ---: | ---: | ---: | ---: |')
    for name, loaded, thr, topk in models:
        boxam = BoxAMInferencer(loaded, 'gradcam', score_thr=thr, topk=topk)
        sample = loaded.prepare([args.image])[0]
        dets = boxam.adapter.detect(sample, thr, topk)
        if len(dets) == 0:
            print(f'| {name} | 0 | - | - | - | - | - |')
            continue
        times = {'grad-cam': [], 'mmcam': []}
        maps = {}
        for _ in range(args.repeats):
            for way in times:
                start = time.perf_counter()
                maps[way] = (gradcam_batched(boxam, sample, dets) if way == 'grad-cam'
                             else boxam.input_maps(sample, dets))
                times[way].append(time.perf_counter() - start)
        old, new = statistics.median(times['grad-cam']), statistics.median(times['mmcam'])
        diff = np.abs(maps['grad-cam'] - maps['mmcam']).max()
        print(f'| {name} | {len(dets)} | {old:.3f} | {new:.3f} | {old / new:.1f}x | '
              f'{new / max(len(dets), 1):.3f} | {diff:.1e} |', flush=True)


if __name__ == '__main__':
    main()
