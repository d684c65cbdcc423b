"""Cost of the transformer methods: GradRollout and AttentionRollout next to GradCAM.

The methods run side by side in one process, alternating, on the same batch of images through
``CAMInferencer.run`` (pipeline, model, method and the geometry back onto the image, as the
tool runs them): the trained demo ViT at 96 px, and ViT-B/16 at 224 px built from the config
the mmpretrain wheel ships (random weights: the cost does not depend on them). The issue's bar
is GradRollout <= 1.5x GradCAM.

    python benchmarks/transformer_methods.py [--repeats 5] [--batch 4]
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
import torch

from mmcam.apis import CAMInferencer
from mmcam.datasets.digit_scenes import DigitSceneGenerator

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
METHODS = ('GradCAM', 'GradRollout', 'AttentionRollout')


def _vit_b16() -> CAMInferencer:
    from mmengine.config import Config
    import mmpretrain
    cfg = Config.fromfile(os.path.join(os.path.dirname(mmpretrain.__file__), '.mim', 'configs',
                                       'vision_transformer', 'vit-base-p16_64xb64_in1k.py'))
    torch.manual_seed(0)
    return CAMInferencer(cfg, None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--batch', type=int, default=4)
    args = parser.parse_args()
    gen = DigitSceneGenerator('test', seed=1)
    scenes = [np.ascontiguousarray(gen.classification_scene(96).image[..., ::-1])
              for _ in range(args.batch)]
    photos = [np.ascontiguousarray(rgb[..., ::-1]) for rgb in _photos(args.batch)]
    models = [('demo ViT, 96 px', CAMInferencer(os.path.join(REPO, 'configs/demo/cls_vit.py'),
                                                os.path.join(REPO,
                                                             'demo/checkpoints/cls_vit.pth')),
               scenes),
              ('ViT-B/16, 224 px', _vit_b16(), photos)]
    print(f'Seconds per batch of {args.batch} (median of {args.repeats} alternating runs, '
          f'{torch.get_num_threads()} threads):')
    print('| model | ' + ' | '.join(METHODS) + ' | GradRollout / GradCAM | '
          'AttentionRollout / GradCAM |')
    print('| --- |' + ' ---: |' * (len(METHODS) + 2))
    for label, inferencer, images in models:
        times = {m: [] for m in METHODS}
        for m in METHODS:  # warm-up
            list(inferencer.run(images, methods=[m], batch_size=args.batch))
        for _ in range(args.repeats):
            for m in METHODS:
                start = time.perf_counter()
                list(inferencer.run(images, methods=[m], batch_size=args.batch))
                times[m].append(time.perf_counter() - start)
        med = {m: statistics.median(t) for m, t in times.items()}
        print(f'| {label} | ' + ' | '.join(f'{med[m]:.3f}' for m in METHODS) +
              f' | {med["GradRollout"] / med["GradCAM"]:.2f}x | '
              f'{med["AttentionRollout"] / med["GradCAM"]:.2f}x |', flush=True)


def _photos(count: int):
    from skimage import data
    names = ('chelsea', 'coffee', 'astronaut', 'rocket')
    return [getattr(data, names[i % len(names)])() for i in range(count)]


if __name__ == '__main__':
    main()
