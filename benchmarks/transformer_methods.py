"""Cost of the transformer methods: GradRollout and AttentionRollout next to GradCAM.

The methods run side by side in one process, alternating, on the same batch of images through
``CAMInferencer.run`` (pipeline, model, method and the geometry back onto the image, as the
tool runs them): the trained demo ViT at 96 px, and ViT-B/16 at 224 px built from the config
the mmpretrain wheel ships (random weights: the cost does not depend on them). The issue's bar
is GradRollout <= 1.5x GradCAM.

Two more columns, timed in the same alternation on the same prepared batch, say what the ratio
can be: grad-cam's own ``GradCAM`` (forward, then ``backward`` through the whole network and
its weights, as grad-cam runs it) and the floor of any method that needs dS/dA in every block,
one forward pass and the gradient of the predicted scores back to the input with the weights
frozen (no maps, no pipeline). mmcam's GradCAM stops its backward pass at the target layer (the
last block), so it costs about one forward pass; GradRollout cannot go below the floor.

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
from mmcam.apis.cam_inferencer import activation_gradients_only
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
    print('| model | ' + ' | '.join(METHODS) + ' | grad-cam GradCAM | forward + backward floor '
          '| GradRollout / GradCAM | AttentionRollout / GradCAM | GradRollout / grad-cam '
          'GradCAM | GradRollout / floor |')
    print('| --- |' + ' ---: |' * (len(METHODS) + 6))
    for label, inferencer, images in models:
        batch = torch.cat([s.inputs for s in inferencer.loaded.prepare(images)])
        runs = {m: (lambda m=m: list(inferencer.run(images, methods=[m],
                                                    batch_size=args.batch)))
                for m in METHODS}
        runs['grad-cam'] = lambda: _grad_cam_gradcam(inferencer, batch)
        runs['floor'] = lambda: _forward_backward_floor(inferencer.model, batch)
        times = {m: [] for m in runs}
        for run in runs.values():  # warm-up
            run()
        for _ in range(args.repeats):
            for m, run in runs.items():
                start = time.perf_counter()
                run()
                times[m].append(time.perf_counter() - start)
        med = {m: statistics.median(t) for m, t in times.items()}
        print(f'| {label} | ' + ' | '.join(f'{med[m]:.3f}' for m in runs) +
              f' | {med["GradRollout"] / med["GradCAM"]:.2f}x | '
              f'{med["AttentionRollout"] / med["GradCAM"]:.2f}x | '
              f'{med["GradRollout"] / med["grad-cam"]:.2f}x | '
              f'{med["GradRollout"] / med["floor"]:.2f}x |', flush=True)


def _grad_cam_gradcam(inferencer: CAMInferencer, batch: torch.Tensor) -> np.ndarray:
    """grad-cam's GradCAM on the inferencer's model, target layers and token reshape."""
    from pytorch_grad_cam import GradCAM
    with GradCAM(inferencer.model, inferencer.target_layers,
                 reshape_transform=inferencer.reshape) as cam:
        maps = cam(input_tensor=batch, targets=None)
    inferencer.model.zero_grad(set_to_none=True)
    return maps


def _forward_backward_floor(model: torch.nn.Module, batch: torch.Tensor) -> torch.Tensor:
    """One forward pass and the predicted scores' gradient back to the input, weights frozen."""
    with activation_gradients_only(model):
        x = batch.detach().requires_grad_(True)
        return torch.autograd.grad(model(x).max(dim=1).values.sum(), x)[0]


def _photos(count: int):
    from skimage import data
    names = ('chelsea', 'coffee', 'astronaut', 'rocket')
    return [getattr(data, names[i % len(names)])() for i in range(count)]


if __name__ == '__main__':
    main()
