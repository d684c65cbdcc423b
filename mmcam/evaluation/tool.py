"""tools/eval_cam.py: explanation quality over a config's test set, through an mmengine Runner.

The Runner's test loop reads the config's own test dataloader (``--cfg-options`` point it
elsewhere) and feeds :class:`mmcam.evaluation.CAMQualityMetric`; under torchrun every process
explains its share of the dataset (gloo on the CPU) and rank 0 writes ``results.json``,
``results.csv`` and ``report/index.html`` into ``--work-dir``.
"""
from __future__ import annotations

import argparse
import copy
import glob
import json
import os
import sys
import time
from typing import List, Optional

from mmcam.cams.box_methods import EXPLAIN_CHOICES
from mmcam.evaluation.faithfulness import ROAD_PERCENTILES
from mmcam.evaluation.metric import METRIC_GROUPS, SANITY_THRESHOLD
from mmcam.evaluation.scores import POINTING_TOLERANCE
from mmcam.utils.errors import InputError


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(
        prog='eval_cam', description=__doc__.splitlines()[0],
        epilog='Example: python tools/eval_cam.py configs/demo/cls_resnet.py '
               'demo/checkpoints/cls_resnet.pth --methods GradCAM LayerCAM '
               '--target-layers backbone.layer4 --max-samples 100 --work-dir outputs/eval')
    parser.add_argument('config', help='an mmpretrain classifier or mmdet/mmyolo detector config')
    parser.add_argument('checkpoint')
    parser.add_argument('--methods', nargs='+', default=None,
                        help='classifiers: grad-cam names (default GradCAM); detectors: box-AM '
                             'methods (default gradcam)')
    parser.add_argument('--target-layers', nargs='+', help='several: each evaluated on its own')
    parser.add_argument('--metrics', nargs='+', choices=METRIC_GROUPS,
                        help='figure groups (default: all but road, whose noisy linear '
                             'imputation, a sparse solve per map and percentile, takes about '
                             '80 %% of the time when it is on)')
    parser.add_argument('--max-samples', type=int, help='only the first N test images')
    parser.add_argument('--work-dir', required=True, help='where results and report/ go')
    parser.add_argument('--boxes', help='classifiers: JSON with each image\'s object boxes '
                        '(default: <ann_file>.json next to the annotation file, if present)')
    parser.add_argument('--category', default='gt', choices=('gt', 'pred'),
                        help='classifiers: explain the true (default) or the predicted class')
    parser.add_argument('--explain', default='class', choices=EXPLAIN_CHOICES,
                        help="detectors: what each box's map explains, its class score (class, "
                             'default), its box outputs (box) or both, as in '
                             'demo/boxam_vis_demo.py')
    parser.add_argument('--tolerance', type=float, nargs='+', default=[POINTING_TOLERANCE],
                        help=f'pointing-game tolerances in pixels (default {POINTING_TOLERANCE:g}; '
                             'the strict count is always given)')
    parser.add_argument('--score-thr', type=float, default=0.3, help='detectors (default 0.3)')
    parser.add_argument('--steps', type=int, default=16, help='deletion/insertion steps')
    parser.add_argument('--road-percentiles', type=int, nargs='+', default=list(ROAD_PERCENTILES),
                        help='ROAD removal percentiles (default %(default)s)')
    parser.add_argument('--save-maps', action='store_true', help='also save maps as .npy')
    parser.add_argument('--batch-size', type=int, help='test dataloader batch size')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config entries, e.g. test_dataloader.dataset.data_root=x')
    parser.add_argument('--allow-unsafe-checkpoint', action='store_true')
    parser.add_argument('--launcher', default='auto', choices=('auto', 'none', 'pytorch'),
                        help='auto: join the torchrun group when started by torchrun')
    return parser.parse_args(argv)


def _init_dist(launcher: str) -> bool:
    """Open the process group torchrun prepared (gloo on the CPU); True if this call did.
    mmengine's own pytorch launcher needs a GPU, so the Runner itself is told 'none' and
    finds the group open."""
    import torch
    import torch.distributed as dist
    if launcher == 'none' or dist.is_initialized():
        return False
    if int(os.environ.get('WORLD_SIZE', '1')) > 1 or launcher == 'pytorch':
        dist.init_process_group('nccl' if torch.cuda.is_available() else 'gloo')
        return True
    return False


def _close_dist() -> None:
    """Leave together: a rank that tears gloo down while the other still writes the report
    can abort it."""
    import torch.distributed as dist
    dist.barrier()
    dist.destroy_process_group()


def _default_boxes(cfg) -> Optional[str]:
    """``<ann_file>.json`` next to a classification dataset's annotation file, if present."""
    ds = cfg.test_dataloader.dataset
    ann = ds.get('ann_file')
    if not ann:
        return None
    path = os.path.splitext(os.path.join(ds.get('data_root') or '', ann))[0] + '.json'
    return path if os.path.isfile(path) else None


def _read_records(work_dir: str, run: str) -> List[dict]:
    """Every record the processes had written when the run stopped."""
    records = {}
    for path in sorted(glob.glob(os.path.join(work_dir, 'per_image', f'{run}_rank*.jsonl'))):
        with open(path) as f:
            for line in f:
                try:
                    rec = json.loads(line)
                except ValueError:  # the line being written when the run stopped
                    continue
                records[rec['index']] = rec
    return [records[k] for k in sorted(records)]


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    try:
        return run(args)
    except InputError as err:
        print(f'eval_cam: error: {err}', file=sys.stderr)
        return 2


def run(args: argparse.Namespace) -> int:
    """Evaluate; under torchrun, join (and at the end leave) the process group."""
    start = time.time()
    opened = _init_dist(args.launcher)
    try:
        return _evaluate(args, start)
    finally:
        if opened:
            _close_dist()


def _evaluate(args: argparse.Namespace, start: float) -> int:
    from mmengine.dist import get_world_size, is_main_process
    from mmengine.runner import Runner
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from mmcam.apis.model_loader import LoadedModel
    from mmcam.evaluation.metric import summarise
    from mmcam.evaluation.report import write_outputs

    loaded = LoadedModel(args.config, args.checkpoint, device=args.device,
                         cfg_options=args.cfg_options,
                         allow_unsafe_checkpoint=args.allow_unsafe_checkpoint)
    cfg = loaded.cfg
    if not cfg.get('test_dataloader'):
        raise InputError(f'{args.config} has no test_dataloader; expected a config with one, or '
                         '--cfg-options that give it (test_dataloader.dataset...).')
    loader = copy.deepcopy(cfg.test_dataloader)
    loader.update(num_workers=0, persistent_workers=False)  # the maps, not loading, take time
    if args.batch_size:
        loader.batch_size = args.batch_size
    if args.max_samples:
        loader.dataset.indices = args.max_samples
    classification = loaded.task == 'classification'
    methods = args.methods or (['GradCAM'] if classification else ['gradcam'])
    groups = args.metrics or [g for g in METRIC_GROUPS if g != 'road']
    boxes = args.boxes or (_default_boxes(cfg) if classification else None)
    metric = dict(type='mmcam.CAMQualityMetric', methods=methods,
                  target_layers=args.target_layers, metrics=groups,
                  category=args.category, explain=args.explain,
                  tolerances=args.tolerance, boxes=boxes,
                  score_thr=args.score_thr, steps=args.steps,
                  road_percentiles=args.road_percentiles, work_dir=args.work_dir,
                  save_maps=args.save_maps)
    os.makedirs(args.work_dir, exist_ok=True)
    runner = Runner(model=loaded.model, work_dir=args.work_dir, test_dataloader=loader,
                    test_cfg=dict(type='TestLoop'), test_evaluator=[metric],
                    default_scope=loaded.scope, launcher='none', log_level='WARNING',
                    env_cfg=dict(dist_cfg=dict(backend='gloo')),
                    visualizer=dict(type='Visualizer', name=f'mmcam_eval_{id(loaded)}'),
                    # mmengine keys the default scope by experiment name, and two runners
                    # started in the same second share a timestamp name: the second would get
                    # the first's scope (a classifier's, for a detector)
                    experiment_name=f'mmcam_eval_{os.getpid()}_{time.time_ns()}',
                    default_hooks=dict(logger=dict(type='LoggerHook', interval=10 ** 9)))
    cam_metric = runner.test_loop.evaluator.metrics[0]
    cam_metric.run_name = runner.timestamp  # the same on every rank
    cam_metric.bind(loaded)
    size = len(runner.test_loop.dataloader.dataset)
    world = get_world_size()
    console = Console(stderr=True)
    if is_main_process():
        console.print(f'eval_cam: {size} images, methods {" ".join(methods)}, '
                      f'{world} process(es); maps and records in {args.work_dir}')
    progress = Progress('[progress.description]{task.description}', BarColumn(),
                        MofNCompleteColumn(), TimeRemainingColumn(), console=console,
                        disable=not is_main_process())
    interrupted = False
    with progress:
        task = progress.add_task('rank 0 explains' if world > 1 else 'explaining',
                                 total=-(-size // world))
        cam_metric.progress = lambda n: progress.advance(task, n)
        try:
            runner.test()
        except KeyboardInterrupt:
            interrupted = True
    if not is_main_process():
        return 0
    records = cam_metric.records
    if interrupted:
        records = _read_records(args.work_dir, runner.timestamp)
        console.print(f'eval_cam: interrupted; writing the {len(records)} finished images')
    summary = cam_metric.summary if not interrupted else summarise(records)
    meta = dict(config=args.config, checkpoint=args.checkpoint, methods=methods,
                target_layers=args.target_layers, metrics=groups, boxes=boxes,
                tolerances=args.tolerance, images=len(records), dataset_size=size,
                processes=world, interrupted=interrupted, sanity_threshold=SANITY_THRESHOLD,
                seconds=time.time() - start)
    paths = write_outputs(args.work_dir, records, summary, meta)
    _print_summary(console, summary)
    for key in ('json', 'csv', 'html'):
        print(paths[key])
    return 1 if interrupted else 0


def _print_summary(console, summary: dict) -> None:
    """A figure per row, a method per column (the full table is in the report)."""
    from rich.table import Table
    names = [n for n in ('pointing_strict', 'pointing_15px', 'energy_ratio', 'peak_in_own_box',
                         'deletion_auc', 'insertion_auc', 'average_drop', 'increase', 'road',
                         'sanity_rho') if any(n in f for f in summary.values())]
    table = Table(title='mean [95 % interval]')
    table.add_column('figure')
    for key in summary:
        table.add_column(key)
    for n in names:
        cells = []
        for figs in summary.values():
            f = figs.get(n)
            cells.append('-' if not f or f['n'] == 0 else f'{f["mean"]:.3f}' + (
                '' if f['n'] < 2 else f' [{f["low"]:.3f}, {f["high"]:.3f}]'))
        table.add_row(n, *cells)
    table.add_row('sanity', *[figs.get('sanity', '-') for figs in summary.values()])
    console.print(table)
