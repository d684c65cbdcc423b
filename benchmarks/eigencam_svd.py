"""EigenCAM box AM on a full-size detector: grad-cam's EigenCAM vs mmcam's (eigenproblem).

Both run side by side in one process, alternating, on the same model, image and box: YOLOv5-s
built from the config the mmyolo wheel ships (640 x 640 input, so neck levels of 80 x 80,
40 x 40 and 20 x 20). Weights are random (no download here): the time of a projection does not
depend on them, and the maps of the two are compared as well.

    python benchmarks/eigencam_svd.py [--repeats 3] [--config CONFIG]
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import time

import numpy as np
import pytorch_grad_cam

import mmyolo
from mmcam.apis.boxam import BoxAMInferencer
from mmcam.apis.model_loader import LoadedModel
from mmcam.cams import eigen

DEFAULT_CONFIG = os.path.join(os.path.dirname(mmyolo.__file__), '.mim', 'configs', 'yolov5',
                              'yolov5_s-v61_syncbn_fast_8xb16-300e_coco.py')
IMAGE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'demo',
                     'digits_det.png')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--config', default=DEFAULT_CONFIG)
    parser.add_argument('--repeats', type=int, default=3)
    args = parser.parse_args()
    loaded = LoadedModel(args.config)
    impls = {'grad-cam EigenCAM': pytorch_grad_cam.EigenCAM, 'mmcam EigenCAM': eigen.EigenCAM}
    times = {name: [] for name in impls}
    maps = {}
    for _ in range(args.repeats):
        for name, cls in impls.items():
            # score_thr 0 and one box: random weights detect nothing above a usual threshold.
            boxam = BoxAMInferencer(loaded, 'eigencam', score_thr=0.0, topk=1)
            # The box-AM method table's EigenCAM entry, with this implementation's class.
            boxam.box_method = dataclasses.replace(boxam.box_method, cam=cls)
            start = time.perf_counter()
            maps[name] = boxam(IMAGE).combined
            times[name].append(time.perf_counter() - start)
    (slow, t_slow), (fast, t_fast) = [(n, statistics.median(t)) for n, t in times.items()]
    print(f'{os.path.basename(args.config)}, input {tuple(loaded.cfg.img_scale)}, '
          f'{args.repeats} alternating runs each, seconds per image (median):')
    for name, t in times.items():
        print(f'  {name:<18} {statistics.median(t):7.3f}  (runs: '
              f'{", ".join(f"{x:.3f}" for x in t)})')
    corr = np.corrcoef(maps[slow].ravel(), maps[fast].ravel())[0, 1]
    print(f'  ratio {slow} / {fast}: {t_slow / t_fast:.1f}x; maps: largest difference '
          f'{np.abs(maps[slow] - maps[fast]).max():.1e}, correlation {corr:.6f} (mmcam fixes the '
          "component's sign, grad-cam keeps LAPACK's: a map of the other sign is the other half "
          'of the same projection)')


if __name__ == '__main__':
    main()
