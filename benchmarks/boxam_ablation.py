"""Box AM with AblationCAM: full re-runs of the detector vs re-running only what follows the
target layers (``DetectorAdapter.replayed_neck``).

Both run side by side in one process, alternating, on the trained demo detectors of the four
families and the demo detection image, with the default layers (the neck's three levels);
the maps of the two are compared as well.

    python benchmarks/boxam_ablation.py [--repeats 3] [--families yolov5 rtmdet]
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

from mmcam.apis.boxam import BoxAMInferencer
from mmcam.apis.model_loader import LoadedModel

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FAMILIES = ('yolov5', 'yolov6', 'yolox', 'rtmdet')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--families', nargs='+', default=list(FAMILIES), choices=FAMILIES)
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--image', default=os.path.join(REPO, 'demo', 'digits_det.png'))
    args = parser.parse_args()
    print(f'AblationCAM box AM of every detection in {os.path.basename(args.image)}, '
          f'{args.repeats} alternating runs each, seconds per image (median):')
    print('| family | boxes | full re-runs | replayed neck | ratio | max map difference |')
    print('| --- | ---: | ---: | ---: | ---: | ---: |')
    for family in args.families:
        loaded = LoadedModel(os.path.join(REPO, 'configs', 'demo', f'det_{family}.py'),
                             os.path.join(REPO, 'demo', 'checkpoints', f'det_{family}.pth'))
        times = {False: [], True: []}
        maps = {}
        for _ in range(args.repeats):
            for replay in (False, True):
                BoxAMInferencer.replay_for_ablation = replay
                boxam = BoxAMInferencer(loaded, 'ablationcam')
                start = time.perf_counter()
                result = boxam(args.image)
                times[replay].append(time.perf_counter() - start)
                maps[replay] = result.box_maps
        BoxAMInferencer.replay_for_ablation = True
        full, replayed = statistics.median(times[False]), statistics.median(times[True])
        diff = np.abs(maps[False] - maps[True]).max() if maps[True].size else 0.0
        print(f'| {family} | {len(maps[True])} | {full:.2f} | {replayed:.2f} | '
              f'{full / replayed:.1f}x | {diff:.1e} |', flush=True)


if __name__ == '__main__':
    main()
