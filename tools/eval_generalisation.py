"""Do the demo classifiers recognise digits or their generator? Top-1 and CAM localisation on
the own held-out test split and on scenes of a second and a third generator.

* own generator: :class:`mmcam.datasets.digit_scenes.DigitSceneGenerator` test split (test
  digits on test photos, 96 x 96); seed 0 gives exactly the scenes of
  ``data/digit_scenes/cls/test`` (the split ``tools/train_demo.py`` evaluates), and the
  localisation scenes are those of :func:`mmcam.cams.localisation.localisation_hits` (seed 1);
* second generator: :class:`mmcam.datasets.other_scenes.OtherSceneGenerator` (test digits only,
  224 x 224, other backgrounds, colours, sizes; see its docstring);
* third generator: :class:`mmcam.datasets.third_scenes.ThirdSceneGenerator` (test digits only,
  256 x 256, choices neither of the others makes: other pictures, letters, scribbles, hexagons,
  plasma; shadows, defocus, JPEG and noise): once a training generator has been changed in the
  light of the second generator's errors, a figure on the second one is no longer a blind
  test, and this one stays one (top-1 only);
* own varied scenes: the training generator's varied scenes
  (:meth:`~mmcam.datasets.digit_scenes.DigitSceneGenerator.varied_classification_scene`) drawn
  from the test split (test digits, test photos; seed :data:`VARIED_SEED`).  A model weak here
  as well as on the second generator underfits its own training distribution; one strong here
  but weak there has learnt the generator.

Localisation: the share of scenes whose map for the true class peaks inside the digit's box
(strict) and within ``--tolerance`` pixels of it (:func:`mmcam.cams.localisation.peak_in_box`,
on the original image), for GradCAM of the ResNet at ``backbone.layer4`` and GradCAM,
AttentionRollout and GradRollout of the ViT.

Example::

    OMP_NUM_THREADS=1 python tools/eval_generalisation.py            # the shipped checkpoints
    python tools/eval_generalisation.py --vit /tmp/old_vit.pth --json /tmp/old.json
    python tools/eval_generalisation.py --models cls_resnet --resnet /tmp/wide/r128/epoch_6.pth \
        --resnet-config experiments/cls_generalisation/cls_resnet_wide128.py   # a 128 px input
"""
from __future__ import annotations

import argparse
import json
import os
import os.path as osp
import sys
import time
from typing import Dict, List, Sequence

import numpy as np

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
#: (model name, target layers of its GradCAM, methods)
MODELS = {
    'cls_resnet': (['backbone.layer4'], ['GradCAM']),
    'cls_vit': (None, ['GradCAM', 'AttentionRollout', 'GradRollout']),
}
#: Seed of the own varied scenes (test split).
VARIED_SEED = 9


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--resnet', default=osp.join(REPO, 'demo/checkpoints/cls_resnet.pth'))
    parser.add_argument('--vit', default=osp.join(REPO, 'demo/checkpoints/cls_vit.pth'))
    parser.add_argument('--resnet-config', default=osp.join(REPO, 'configs/demo/cls_resnet.py'),
                        help="the ResNet's config (another input size: a config whose test "
                        'pipeline resizes to it)')
    parser.add_argument('--vit-config', default=osp.join(REPO, 'configs/demo/cls_vit.py'))
    parser.add_argument('--models', nargs='+', default=list(MODELS), choices=list(MODELS))
    parser.add_argument('--own-count', type=int, default=1000,
                        help='own test-split scenes for top-1 (1000 = the whole split)')
    parser.add_argument('--other-count', type=int, default=200,
                        help='second-generator scenes for top-1')
    parser.add_argument('--third-count', type=int, default=300,
                        help='third-generator scenes for top-1 (0: skip)')
    parser.add_argument('--varied-count', type=int, default=300,
                        help='own varied test-split scenes for top-1 (0: skip)')
    parser.add_argument('--loc-count', type=int, default=100,
                        help='scenes per generator for the localisation figures')
    parser.add_argument('--other-seed', type=int, default=0,
                        help='seed of the second and third generators')
    parser.add_argument('--loc-seed', type=int, default=1,
                        help='own-generator seed of the localisation scenes')
    parser.add_argument('--tolerance', type=float, default=4.0)
    parser.add_argument('--json', help='also write the figures to this file')
    return parser.parse_args()


def _shown(path: str) -> str:
    """``path`` as the report shows it: relative to the repository when it lies inside."""
    return osp.relpath(path, REPO) if path.startswith(REPO) else path


def _bgr(image: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(image[..., ::-1])  # scenes are RGB; mmcam reads BGR


def own_varied_scenes(count: int) -> list:
    """``count`` varied scenes of the training generator drawn from the test split (test digits
    and photos), seed :data:`VARIED_SEED`."""
    from mmcam.datasets.digit_scenes import DigitSceneGenerator
    gen = DigitSceneGenerator('test', seed=VARIED_SEED)
    return [gen.varied_classification_scene() for _ in range(count)]


def top1(inferencer, scenes: Sequence, batch: int = 50) -> float:
    """Top-1 accuracy (%) of the inferencer's classifier on single-digit scenes."""
    import torch
    correct = 0
    for i in range(0, len(scenes), batch):
        chunk = scenes[i:i + batch]
        inputs = torch.cat([s.inputs for s in inferencer.loaded.prepare(
            [_bgr(sc.image) for sc in chunk])])
        with torch.no_grad():
            pred = inferencer.model(inputs).argmax(1).cpu().numpy()
        correct += int(sum(int(p) == int(sc.labels[0]) for p, sc in zip(pred, chunk)))
    return 100.0 * correct / len(scenes)


def localisation(inferencer, methods: List[str], scenes: Sequence, tolerance: float
                 ) -> Dict[str, dict]:
    """{method: {'percent': [strict %, within-tolerance %], 'hits': per-scene 0/1/2}} over
    the scenes (map of the true class; 2 = in the box, 1 = only within the tolerance)."""
    from mmcam.cams.localisation import scene_hits
    hits = {m: [int(strict) + int(near) for strict, near in flags] for m, flags in
            scene_hits(inferencer, scenes, methods, (0.0, tolerance)).items()}
    return {m: dict(percent=[100.0 * sum(h == 2 for h in v) / len(scenes),
                             100.0 * sum(h >= 1 for h in v) / len(scenes)], hits=v)
            for m, v in hits.items()}


def main() -> None:
    args = parse_args()
    import torch

    import mmcam  # noqa: F401
    from mmcam.apis import CAMInferencer
    from mmcam.datasets.digit_scenes import DigitSceneGenerator
    from mmcam.datasets.other_scenes import OtherSceneGenerator
    from mmcam.datasets.third_scenes import ThirdSceneGenerator
    torch.set_num_threads(int(os.environ.get('OMP_NUM_THREADS', 1)))

    own_gen = DigitSceneGenerator('test', seed=0)
    own = [own_gen.classification_scene(96) for _ in range(args.own_count)]
    loc_gen = DigitSceneGenerator('test', seed=args.loc_seed)
    own_loc = [loc_gen.classification_scene(96) for _ in range(args.loc_count)]
    varied = own_varied_scenes(args.varied_count)
    other_gen = OtherSceneGenerator(args.other_seed)
    other = [other_gen.scene() for _ in range(max(args.other_count, args.loc_count))]
    other_loc = other[:args.loc_count]
    third_gen = ThirdSceneGenerator(args.other_seed)
    third = [third_gen.scene() for _ in range(args.third_count)]

    report = dict(own_count=len(own), other_count=args.other_count, loc_count=args.loc_count,
                  varied_count=len(varied), varied_seed=VARIED_SEED, third_count=len(third),
                  other_seed=args.other_seed, loc_seed=args.loc_seed, tolerance=args.tolerance,
                  models={})
    for name in args.models:
        layers, methods = MODELS[name]
        ckpt, config = ((args.resnet, args.resnet_config) if name == 'cls_resnet'
                        else (args.vit, args.vit_config))
        start = time.time()
        inf = CAMInferencer(config, ckpt, target_layers=layers)
        entry = dict(checkpoint=_shown(ckpt), config=_shown(config),
                     top1_own=top1(inf, own), top1_other=top1(inf, other[:args.other_count]),
                     top1_varied=top1(inf, varied) if varied else None,
                     top1_third=top1(inf, third) if third else None,
                     loc_own=localisation(inf, methods, own_loc, args.tolerance),
                     loc_other=localisation(inf, methods, other_loc, args.tolerance))
        entry['seconds'] = round(time.time() - start)
        report['models'][name] = entry
        print(f'[eval_generalisation] {name} done in {entry["seconds"]} s', file=sys.stderr,
              flush=True)

    tol = f'{args.tolerance:g} px'
    print(f'\ntop-1: own test split ({len(own)} scenes), own varied scenes ({len(varied)}, '
          f'test split, seed {VARIED_SEED}), second generator ({args.other_count} scenes, seed '
          f'{args.other_seed}), third generator ({len(third)} scenes, seed {args.other_seed})')
    print('| model | checkpoint | own split | own varied | second generator | third generator |\n'
          '| --- | --- | ---: | ---: | ---: | ---: |')
    for name, e in report['models'].items():
        varied_cell, third_cell = (('-' if v is None else f'{v:.1f} %')
                                   for v in (e['top1_varied'], e['top1_third']))
        print(f'| {name} | {e["checkpoint"]} | {e["top1_own"]:.1f} % | {varied_cell} | '
              f'{e["top1_other"]:.1f} % | {third_cell} |')
    print(f'\npeak in the digit box, strict / within {tol} ({args.loc_count} scenes per '
          f'generator; own: seed {args.loc_seed}, second: seed {args.other_seed})')
    print('| model | method | own generator | second generator |\n| --- | --- | --- | --- |')
    for name, e in report['models'].items():
        for m in e['loc_own']:
            a, b = e['loc_own'][m]['percent'], e['loc_other'][m]['percent']
            print(f'| {name} | {m} | {a[0]:.0f} % / {a[1]:.0f} % | {b[0]:.0f} % / {b[1]:.0f} % |')
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(report, f, indent=1)


if __name__ == '__main__':
    main()
