"""Held-out digit scenes with their digit boxes, for evaluating the demo models.

The classification split of :mod:`mmcam.datasets.digit_scenes` lists labels only; the CAM
evaluation also needs each digit's box. :func:`write_classification_with_boxes` writes the
same scenes (same split, seed and order as ``write_classification``) plus ``<split>.json``
with the boxes, which ``tools/eval_cam.py`` finds next to ``<split>.txt``. Detection scenes
carry their boxes already (``write_detection``: COCO json).

    python -m mmcam.evaluation.digit_data OUT_DIR [--count 100] [--seed 1] [--detection]
"""
from __future__ import annotations

import argparse
import json
import os

from mmcam.datasets.digit_scenes import (CLASSES, DigitSceneGenerator,
                                         write_classification, write_detection)


def write_classification_with_boxes(root: str, split: str = 'test', count: int = 100,
                                    seed: int = 1, size: int = 96) -> str:
    """``write_classification``'s files plus ``<split>.json`` ({"images": [{"file", "boxes",
    "labels"}]}); returns the annotation file."""
    ann = write_classification(root, split, count, seed, size)
    gen = DigitSceneGenerator(split, seed)  # the same draws again: the same scenes
    items = []
    for i in range(count):
        scene = gen.classification_scene(size)
        items.append(dict(file=f'{split}/{i:05d}.png', **scene.to_dict()))
    with open(os.path.join(root, f'{split}.json'), 'w') as f:
        json.dump(dict(classes=list(CLASSES), images=items), f)
    return ann


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('out_dir')
    parser.add_argument('--count', type=int, default=100)
    parser.add_argument('--seed', type=int, default=1)
    parser.add_argument('--split', default='test')
    parser.add_argument('--detection', action='store_true',
                        help='detection scenes (COCO json) instead of single digits')
    args = parser.parse_args()
    if args.detection:
        print(write_detection(args.out_dir, args.split, args.count, args.seed))
    else:
        print(write_classification_with_boxes(args.out_dir, args.split, args.count, args.seed))


if __name__ == '__main__':
    main()
