"""How often does each CAM method's peak fall inside the digit, on held-out digit scenes?

Example::

    python tools/eval_cam_localisation.py configs/demo/cls_resnet.py \\
        demo/checkpoints/cls_resnet.pth --method GradCAM GradCAM++ EigenCAM --count 50
"""
from __future__ import annotations

import argparse
import sys
import time


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--method', nargs='+', default=['GradCAM'])
    parser.add_argument('--target-layers', nargs='+')
    parser.add_argument('--count', type=int, default=50, help='held-out scenes (default 50)')
    parser.add_argument('--seed', type=int, default=1)
    parser.add_argument('--size', type=int, default=96, help='scene side in pixels')
    parser.add_argument('--margin', type=float, default=4.0,
                        help='also count peaks within this many pixels of the box (default 4)')
    parser.add_argument('--device', default='cpu')
    args = parser.parse_args()

    from rich.console import Console
    from rich.table import Table

    from mmcam.apis import CAMInferencer, InputError
    from mmcam.cams.localisation import localisation_hits
    try:
        inferencer = CAMInferencer(args.config, args.checkpoint, device=args.device,
                                   target_layers=args.target_layers)
    except InputError as err:
        print(f'eval_cam_localisation: error: {err}', file=sys.stderr)
        return 2
    table = Table(title=f'Peak inside the digit box, {args.count} held-out scenes '
                  f'(layer {", ".join(inferencer.target_layer_names)})')
    for col in ('method', 'in box', f'within {args.margin:g} px', 'seconds'):
        table.add_column(col)
    for method in args.method:
        start = time.time()
        (strict, loose), total = localisation_hits(inferencer, method, args.count, args.seed,
                                                   args.size, margins=(0.0, args.margin))
        table.add_row(method, f'{strict}/{total} ({strict / total:.0%})',
                      f'{loose}/{total} ({loose / total:.0%})', f'{time.time() - start:.1f}')
    Console().print(table)
    return 0


if __name__ == '__main__':
    sys.exit(main())
