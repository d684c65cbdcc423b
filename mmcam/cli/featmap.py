"""Feature maps of any layers of an mmyolo/mmdet detector or mmpretrain classifier.

    python demo/featmap_vis_demo.py IMG CONFIG CHECKPOINT [options]

IMG is an image file, a folder or a glob pattern; the model is loaded once. The flags are those
of mmyolo's demo/featmap_vis_demo.py (same names, same meanings), plus --out-dir, --canvas,
--alpha and --debug. Unlike mmyolo's demo, the maps are aligned with the original image
through the test pipeline's own resize/letterbox metadata, so no test_pipeline edit is needed,
and --cfg-options reach the model that is actually built.
"""
from __future__ import annotations

import argparse
import os
import sys
import warnings
from typing import List, Optional, Sequence


import mmcam
from mmcam.apis.featmap import FeatMapInferencer
from mmcam.apis.model_loader import InputError, LoadedModel, expand_images
from mmcam.cli.common import (Report, Shower, add_common_arguments, check_writable,
                              each_image, new_parser, output_stems, outside, pick_device,
                              preview_model, run_tool)


MMCAM_DIR = os.path.dirname(os.path.abspath(mmcam.__file__))


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = new_parser('Draw feature maps of chosen layers, aligned with the original image.',
                        'model')
    parser.add_argument('--target-layers', nargs='+', default=['backbone'],
                        help='modules whose outputs to draw, e.g. backbone, neck, '
                        'backbone.stage4, neck.out_layers[2]; a module that returns several '
                        'pyramid levels gives one map per level (default: backbone)')
    parser.add_argument('--preview-model', action='store_true',
                        help='print every layer name, type and output shape for IMG, and exit')
    parser.add_argument('--channel-reduction', default='select_max',
                        choices=['squeeze_mean', 'select_max', 'None'],
                        help='squeeze_mean: mean of all channels; select_max: the most active '
                        'channel; None: the --topk most active channels (default: select_max)')
    parser.add_argument('--topk', type=int, default=4,
                        help='with --channel-reduction None: how many channels to show; -1 '
                        'shows a 1- or 3-channel map as it is (default: 4)')
    parser.add_argument('--arrangement', nargs=2, type=int, default=[2, 2],
                        metavar=('ROWS', 'COLS'), help='grid of the top-k maps (default: 2 2)')
    parser.add_argument('--score-thr', type=float, default=None,
                        help='detectors only: draw the detections scoring at least this '
                        '(default: no detections drawn)')
    parser.add_argument('--canvas', choices=['original', 'input'], default='original',
                        help='draw on the original image (pipeline resize/padding undone) or '
                        'on the network input as the model saw it (default: original)')
    parser.add_argument('--alpha', type=float, default=0.5,
                        help='opacity of the maps over the image, 0..1 (default: 0.5)')
    parser.add_argument('--out-file', help='output picture, for a single image')
    parser.add_argument('--out-dir', help='output folder, one PNG per image; sub-folders of '
                        'IMG are mirrored (default: outputs/featmap_vis unless --out-file)')
    parser.add_argument('--show', action='store_true', help='show each picture in a window')
    add_common_arguments(parser)
    return parser.parse_args(argv)


def check_options(args: argparse.Namespace, images: List[str]) -> None:
    """Refuse output options that cannot work, before the model is loaded (the explainer checks
    the drawing options, also before loading)."""
    if args.out_file and len(images) > 1:
        raise InputError(f'--out-file names one picture but IMG matched {len(images)} images; '
                         'use --out-dir DIR instead.')
    if args.out_file and args.out_dir:
        raise InputError('--out-file and --out-dir were both given; expected one of them.')
    check_writable(args.out_dir)
    check_writable(os.path.dirname(args.out_file or ''), '--out-file')


def run(args: argparse.Namespace) -> int:
    if args.channel_reduction == 'None':
        args.channel_reduction = None
    images = expand_images(args.img)
    check_options(args, images)
    if not (args.out_file or args.out_dir or args.preview_model):
        args.out_dir = os.path.join('outputs', 'featmap_vis')
    images = outside(images, args.out_dir)

    if args.preview_model:
        return preview_model(LoadedModel(
            args.config, args.checkpoint, device=pick_device(args.device),
            cfg_options=args.cfg_options,
            allow_unsafe_checkpoint=args.allow_unsafe_checkpoint), images)
    featmaps = FeatMapInferencer(
        args.config, args.checkpoint, target_layers=args.target_layers,
        channel_reduction=args.channel_reduction, topk=args.topk,
        arrangement=tuple(args.arrangement), score_thr=args.score_thr, canvas=args.canvas,
        alpha=args.alpha, device=pick_device(args.device), cfg_options=args.cfg_options,
        allow_unsafe_checkpoint=args.allow_unsafe_checkpoint)

    report = Report()
    show = Shower(args.show, report, args.out_file or args.out_dir)
    outputs = {images[0]: args.out_file} if args.out_file else {
        image: stem + '.png' for image, stem in output_stems(images, args.out_dir).items()}
    images = report.keep_existing(images, outputs, args.skip_existing)

    def work(image: str) -> None:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter('always')
            drawn = featmaps.draw(featmaps.explain(image))
        for w in caught:  # mmcam's own notes (e.g. a stretched map), not dependencies'
            if os.path.abspath(w.filename).startswith(MMCAM_DIR):
                report.note(str(w.message))
        report.save_picture(outputs[image], drawn)
        show(drawn, os.path.basename(image))
    return each_image(images, 'feature maps', report, args.debug, work)


def main(argv: Optional[Sequence[str]] = None) -> int:
    return run_tool('featmap_vis_demo', run, parse_args, argv)


if __name__ == '__main__':
    sys.exit(main())
