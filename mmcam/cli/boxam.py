"""Box-level activation maps (box AM) of YOLOv5, YOLOv6, YOLOX and RTMDet detections.

    python demo/boxam_vis_demo.py IMG CONFIG CHECKPOINT [options]

IMG is an image file, a folder or a glob pattern; the model is loaded once. The flags are those
of mmyolo's demo/boxam_vis_demo.py (same names, same meanings: gradcam keeps the gradient per
pixel) plus --explain, --per-box, --combine, --save-cam, --allow-unsafe-checkpoint and --debug.
Unlike mmyolo's demo it runs on the current
grad-cam, gradient methods explain each detection through its own score in the head's outputs
(no training loss, so every head works), and the maps are aligned with the original image
through the test pipeline's own letterbox metadata, with no config edit.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import List, Optional, Sequence

import numpy as np

from mmcam.apis.boxam import BoxAMInferencer, check_score_thr
from mmcam.apis.model_loader import InputError, LoadedModel, expand_images
from mmcam.cams.box_maps import COMBINE_MODES
from mmcam.cams.box_methods import (BOX_METHODS, EXPLAIN_CHOICES, check_explain,
                                    get_box_method, gradient_box_methods)
from mmcam.cli.common import (Report, Shower, add_common_arguments, check_writable,
                              each_image, new_parser, output_stems, outside, pick_device,
                              preview_model, run_tool)
from mmcam.models.detectors import build_adapter
from mmcam.structures import BoxAMResult
from mmcam.utils.errors import first_line


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = new_parser('Draw box-level activation maps of an mmyolo or mmdet detector.',
                        'detector')
    methods = '; '.join(f'{m.name}: {m.summary}' for m in BOX_METHODS.values())
    parser.add_argument('--method', default='gradcam', type=str.lower,
                        help=f'box-AM method (default: gradcam, also called odam). {methods}')
    parser.add_argument('--explain', default='class', choices=EXPLAIN_CHOICES,
                        help="what each box's map explains: its class score (class), its box "
                        'regression outputs, one map per coordinate combined by their maximum '
                        '(box), or the maximum of both (both); box and both need a gradient '
                        f'method ({", ".join(gradient_box_methods())}) (default: class)')
    parser.add_argument('--target-layers', nargs='+',
                        help='layers to explain; the maps of several layers are combined by '
                        'their maximum (default: every feature level the head reads, e.g. '
                        'neck.out_layers[0..2] of a YOLO neck or neck.fpn_convs[i] of an FPN, '
                        'printed at the start; a box depends only on the level it was '
                        'predicted from)')
    parser.add_argument('--preview-model', action='store_true',
                        help='print every layer name, type and output shape for IMG, and exit')
    parser.add_argument('--out-dir', default='./output',
                        help='output folder: <name>.png, <name>_per_box.png, .npy maps; '
                        'sub-folders of IMG are mirrored (default: ./output)')
    parser.add_argument('--show', action='store_true', help='show each picture in a window')
    parser.add_argument('--score-thr', type=float, default=0.3,
                        help='explain detections scoring at least this (default: 0.3)')
    parser.add_argument('--topk', type=int, default=-1,
                        help='explain at most this many boxes, highest scores first; -1 for all '
                        '(default: -1)')
    parser.add_argument('--per-box', action='store_true',
                        help='also draw one map per box, in a grid titled with class and score')
    parser.add_argument('--combine', choices=COMBINE_MODES, default='max',
                        help='combined map from the per-box maps: their maximum, or their sum '
                        'rescaled to [0, 1] (default: max)')
    parser.add_argument('--norm-in-bbox', action='store_true',
                        help='normalise each map inside its box and zero it outside')
    parser.add_argument('--max-shape', nargs='+', type=int, default=[-1],
                        help='when a target layer outputs several maps (e.g. neck), their '
                        'common size is capped at this (h w, or one number); -1: no cap')
    parser.add_argument('--batch-size', type=int, default=8,
                        help='ablationcam/scorecam: copies per forward pass; the map does not '
                        'depend on it (default: 8)')
    parser.add_argument('--ratio-channels-to-ablate', type=float, default=1.0,
                        help='ablationcam: fraction of the channels to ablate, 0 < r <= 1 '
                        '(default: 1.0, all)')
    parser.add_argument('--save-cam', action='store_true',
                        help='also save the maps as float32 .npy on original-image pixels: '
                        '<name>.npy and, with --per-box, <name>_box<i>.npy')
    add_common_arguments(parser)
    return parser.parse_args(argv)


def check_options(args: argparse.Namespace) -> None:
    """Refuse impossible options before the model is loaded."""
    check_explain(get_box_method(args.method), args.explain)
    check_writable(args.out_dir)
    if len(args.max_shape) not in (1, 2):
        raise InputError(f'--max-shape {args.max_shape} has {len(args.max_shape)} numbers; '
                         'expected one (a square) or two (h w).')
    check_score_thr(args.score_thr)
    if args.topk == 0 or args.topk < -1:
        raise InputError(f'--topk {args.topk} leaves no box; expected a positive number or -1.')


def write_outputs(args: argparse.Namespace, boxam: BoxAMInferencer, result: BoxAMResult,
                  stem: str, report: Report) -> List[np.ndarray]:
    """Draw and save the pictures (and maps) of one image; return the pictures."""
    pictures = [boxam.draw(result)]
    if args.per_box and len(result.detections):
        pictures.append(boxam.draw(result, per_box=True, numbered=True))
    for picture, name in zip(pictures, [f'{stem}.png', f'{stem}_per_box.png']):
        report.save_picture(name, picture)
    if args.save_cam:
        arrays = {f'{stem}.npy': result.combined}
        if args.per_box:
            arrays.update({f'{stem}_box{i}.npy': m for i, m in enumerate(result.box_maps)})
        for name, array in arrays.items():
            report.save_map(name, array)
    return pictures


def run(args: argparse.Namespace) -> int:
    check_options(args)
    images = [] if args.preview_model else outside(expand_images(args.img), args.out_dir)
    loaded = LoadedModel(args.config, args.checkpoint, device=pick_device(args.device),
                         cfg_options=args.cfg_options,
                         allow_unsafe_checkpoint=args.allow_unsafe_checkpoint)
    if args.preview_model:
        try:
            images = expand_images(args.img)
        except InputError:
            images = []
        status = preview_model(loaded, images)
        try:
            adapter = build_adapter(loaded.model)
        except InputError as err:
            print(f'note: {first_line(err)}', file=sys.stderr)
        else:
            print(f'box AM default target layers ({adapter.family}): '
                  f'{" ".join(adapter.default_target_layers())}', file=sys.stderr)
        return status
    max_shape = args.max_shape * 2 if len(args.max_shape) == 1 else args.max_shape
    boxam = BoxAMInferencer(
        loaded, args.method, args.target_layers, score_thr=args.score_thr, topk=args.topk,
        norm_in_bbox=args.norm_in_bbox, combine=args.combine, batch_size=args.batch_size,
        ratio_channels_to_ablate=args.ratio_channels_to_ablate,
        max_shape=None if max_shape[0] < 0 and max_shape[1] < 0 else max_shape,
        explain=args.explain)
    if not args.target_layers:
        print(f'target layer(s): {", ".join(boxam.layer_names)} (default: the feature levels '
              f'the {boxam.adapter.family} head reads; --target-layers chooses others)',
              file=sys.stderr, flush=True)

    report = Report()
    show = Shower(args.show, report, args.out_dir)
    stems = output_stems(images, args.out_dir)
    images = report.keep_existing(images, {i: s + '.png' for i, s in stems.items()},
                                  args.skip_existing)

    def work(image: str) -> None:
        result = boxam.explain(image)
        pictures = write_outputs(args, boxam, result, stems[image], report)
        if len(result.detections) == 0:
            report.note(f'no detection with score >= {args.score_thr:g} in {image}: wrote the '
                        'plain image with a note; try a lower --score-thr')
        for picture in pictures:
            show(picture, os.path.basename(image))
    return each_image(images, f'box AM ({boxam.method})', report, args.debug, work)


def main(argv: Optional[Sequence[str]] = None) -> int:
    return run_tool('boxam_vis_demo', run, parse_args, argv)


if __name__ == '__main__':
    sys.exit(main())
