"""Write the seeded digit-scene datasets (classification, two-digit, detection).

Example::

    python tools/make_digit_scenes.py data/digit_scenes --seed 0
    python tools/make_digit_scenes.py data/digit_scenes --demo-dir demo   # also the demo images
    python tools/make_digit_scenes.py data/digit_scenes --only cls        # only the classifiers'
"""
from __future__ import annotations

import argparse
import time

from mmcam.datasets.digit_scenes import COUNTS, DATASETS, write_all, write_demo_images


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('out_dir', help='folder to write cls/, two/ and det/ into')
    parser.add_argument('--seed', type=int, default=0, help='scene seed (default 0)')
    parser.add_argument('--demo-dir', help='also write the small demo images into this folder')
    parser.add_argument('--only', nargs='+', choices=DATASETS, default=list(DATASETS),
                        help='write only these datasets (default: all three); the others are '
                        'left as they are')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    start = time.time()
    written = write_all(args.out_dir, args.seed, only=args.only)
    for name, ann in written.items():
        print(f'{name:10s} {ann}')
    total = sum(sum(COUNTS[d].values()) for d in args.only)
    print(f'{total} images written to {args.out_dir} in {time.time() - start:.0f} s '
          f'(seed {args.seed})')
    if args.demo_dir:
        for path in write_demo_images(args.demo_dir, args.seed).values():
            print(f'demo image {path}')


if __name__ == '__main__':
    main()
