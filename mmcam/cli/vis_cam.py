"""Class activation maps of an mmpretrain classifier for one image, a folder or a glob.

Examples::

    python tools/vis_cam.py demo/digit.png configs/demo/cls_resnet.py \\
        demo/checkpoints/cls_resnet.pth --save-path cam.png
    python tools/vis_cam.py 'images/*.jpg' CONFIG CKPT --method GradCAM EigenCAM gradcam++ \\
        --target-category 3 7 --out-dir cams/ --save-cam
    python tools/vis_cam.py img.jpg CONFIG CKPT --preview-model

The flags of mmpretrain's tools/visualization/vis_cam.py keep their names and meanings.
"""
from __future__ import annotations

import argparse
import functools
import os
import sys
from typing import List, Optional

import numpy as np

from mmcam.apis import CAMInferencer, InputError, SkippedImage, expand_images
from mmcam.cams.layers import backbone_extra_tokens
from mmcam.cams.methods import get_method, method_names, transformer_method_names
from mmcam.cli.common import (Report, add_common_arguments, can_show, check_writable,
                              new_parser, output_stems, outside, pick_device, print_preview,
                              run_tool)



def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = new_parser('Visualise class activation maps (CAM) of an mmpretrain classifier.',
                        'mmpretrain')
    parser.add_argument(
        '--target-layers', nargs='+', metavar='NAME',
        help="layer(s) to explain, e.g. 'backbone.layer4', 'backbone.layer4[-1]', "
        "'backbone.layers[-1].ln1'; several are averaged as grad-cam does. Default: the "
        "backbone's last norm layer (ViT-like: the norm before the last attention block)")
    parser.add_argument('--preview-model', action='store_true',
                        help='print every layer name (with output shapes for IMG) and exit')
    parser.add_argument(
        '--method', nargs='+', default=['GradCAM'], metavar='METHOD',
        help=f'CAM method(s), case-insensitive, side by side if several: '
        f'{", ".join(method_names())} (GradCAM++ also works). Default: GradCAM. '
        f'{" and ".join(transformer_method_names())} read the global attention of ViT-like '
        'models (ViT, DeiT, T2T-ViT) instead of a target layer; AttentionRollout is not '
        'class-specific (the same map for every category), GradRollout is')
    parser.add_argument(
        '--target-category', nargs='+', metavar='CAT',
        help='class index(es) or name(s) to explain, one map each. Default: the predicted class')
    parser.add_argument('--eigen-smooth', action='store_true',
                        help='keep the first principal component of the weighted activations')
    parser.add_argument('--aug-smooth', action='store_true',
                        help='average over test-time augmentation (flips, brightness)')
    parser.add_argument('--save-path', help='output picture for one image (.npy: maps only)')
    parser.add_argument('--out-dir', help='output folder (for folders and globs); sub-folders '
                        'of IMG are mirrored')
    parser.add_argument(
        '--save-cam', action='store_true',
        help='also save each raw map as float32 .npy (H x W of the original image, in [0, 1])')
    parser.add_argument('--show-input', action='store_true',
                        help='draw on the network input instead of the original image')
    parser.add_argument('--guided', action='store_true',
                        help='add guided backprop and guided Grad-CAM pictures')
    parser.add_argument('--vit-like', action='store_true',
                        help='accepted for compatibility; token outputs are recognised anyway')
    parser.add_argument(
        '--num-extra-tokens', type=int,
        help="class/distillation tokens before the patch tokens (overrides the backbone's "
        'num_extra_tokens; 0 is honoured)')
    parser.add_argument('--alpha', type=float, default=0.5, help='overlay opacity of the map')
    parser.add_argument('--batch-size', type=int, default=4, help='images per forward pass')
    add_common_arguments(parser)
    return parser.parse_args(argv)


def _check_args(args: argparse.Namespace) -> None:
    if args.batch_size < 1:
        raise InputError(f'--batch-size {args.batch_size}: expected 1 or more.')
    if not 0.0 <= args.alpha <= 1.0:
        raise InputError(f'--alpha {args.alpha}: expected a value in [0, 1].')
    if args.save_path and args.out_dir:
        raise InputError('--save-path and --out-dir were both given; expected one: --save-path '
                         'for one image, --out-dir for many.')
    check_writable(args.out_dir)
    check_writable(os.path.dirname(args.save_path or ''), '--save-path')


def _outputs(args, paths: List[str]):
    """Picture path per input path (None: show in a window)."""
    if args.save_path:
        if len(paths) > 1:
            raise InputError(f'{len(paths)} images were given but --save-path names one file; '
                             'use --out-dir DIR for many images.')
        return {paths[0]: args.save_path}
    if args.out_dir:
        return {p: stem + '.png' for p, stem in output_stems(paths, args.out_dir).items()}
    if len(paths) > 1 or not can_show():
        raise InputError('No output was given and there is no display to show the picture on; '
                         'add --save-path FILE.png (one image) or --out-dir DIR.')
    return {paths[0]: None}


def _save(result, picture: Optional[np.ndarray], out: str, save_cam: bool,
          report: Report) -> None:
    stem, ext = os.path.splitext(out)
    if picture is not None and ext.lower() != '.npy':
        report.save_picture(out, picture)
    if save_cam or ext.lower() == '.npy':
        for m in result.maps:
            name = stem + '.npy' if len(result.maps) == 1 else \
                f'{stem}_{m.method}_{m.category}.npy'
            report.save_map(name, m.cam)


def main(argv: Optional[List[str]] = None) -> int:
    return run_tool('vis_cam', run, parse_args, argv)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import track

    _check_args(args)
    for m in args.method:
        get_method(m)
    paths = outside(expand_images(args.img), args.out_dir)
    outputs = None if args.preview_model else _outputs(args, paths)
    inferencer = CAMInferencer(args.config, args.checkpoint, device=pick_device(args.device),
                               cfg_options=args.cfg_options,
                               allow_unsafe_checkpoint=args.allow_unsafe_checkpoint,
                               target_layers=args.target_layers,
                               num_extra_tokens=args.num_extra_tokens)
    if args.preview_model:
        print_preview(inferencer.preview(paths[0]), paths[0])
        return 0
    inferencer.parse_categories(args.target_category)  # fail before any work
    say = functools.partial(print, file=sys.stderr, flush=True)
    say(f'target layer(s): {", ".join(inferencer.target_layer_names)} '
        f'({inferencer.target_layer_reason})')
    transformer_methods = transformer_method_names()
    if backbone_extra_tokens(inferencer.classifier.backbone) and not any(
            get_method(m).__name__ in transformer_methods for m in args.method):
        say(f'hint: this is a class-token ViT; {" and ".join(transformer_methods)} read its '
            'attention and usually localise better than CNN methods here '
            '(--method GradRollout, see docs/en/vis_cam.md)')
    report, reported_grid, empty = Report(), False, []
    paths = report.keep_existing(paths, outputs, args.skip_existing)
    results = inferencer.run(paths, methods=args.method, target_category=args.target_category,
                             eigen_smooth=args.eigen_smooth, aug_smooth=args.aug_smooth,
                             guided=args.guided, batch_size=args.batch_size,
                             skip_errors=len(paths) > 1)  # one image: its error is the error
    for result in track(results, total=len(paths), description='CAM',
                        console=Console(stderr=True), disable=len(paths) == 1):
        if isinstance(result, SkippedImage):
            report.skipped.append((result.path, result.reason))
            continue
        out = outputs[result.path]
        picture = None
        empty += [f'{m.method} for {m.class_name} in {os.path.basename(result.path)}'
                  for m in result.maps if not m.cam_input.any()]
        if out is None or not out.lower().endswith('.npy'):
            picture = inferencer.draw(result, show_input=args.show_input, alpha=args.alpha)
        if out is None:
            import mmcv
            mmcv.imshow(mmcv.rgb2bgr(picture), win_name=os.path.basename(result.path))
        else:
            _save(result, picture, out, args.save_cam, report)
        if not reported_grid and inferencer.reshape.grid_hw:  # once, on the first image
            reported_grid = True
            (gh, gw), (ih, iw) = inferencer.reshape.grid_hw, result.input_image.shape[:2]
            say(f'map grid: {gh}x{gw} cells on a {ih}x{iw} network input'
                + (' (coarse: a finer layer may localise better, see --preview-model)'
                   if min(gh, gw) <= 4 else ''))
        if len(paths) == 1:
            explained = ', '.join(dict.fromkeys(f'{m.category} ({m.class_name})'
                                                for m in result.maps))
            say(f'{result.path}: predicted {result.pred_class} ({result.pred_score:.2f}); '
                f'maps for category {explained}')
    if empty:  # an honest blank picture still needs saying why it is blank
        report.note(f'{len(empty)} map(s) are zero everywhere (first: {empty[0]}): no '
                    f'position of {", ".join(inferencer.target_layer_names)} raises that score '
                    '(after the last attention block of a class-token ViT, for instance, only '
                    'the class token reaches the head). Try an earlier --target-layers '
                    '(--preview-model lists them) or another method.')
    return report.finish(len(paths))


if __name__ == '__main__':
    sys.exit(main())
