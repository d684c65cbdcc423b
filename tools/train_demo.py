"""Re-train one of mmcam's demo models on the digit scenes, evaluate it, export it.

Each model is trained by the real OpenMMLab entry point (mmpretrain's, mmyolo's or mmdet's
``tools/train.py``, an mmengine Runner) from ``configs/demo/<NAME>.py`` with a fixed seed.  A
config with a ``fine_tune`` entry is trained in two steps: from scratch, then fine-tuned from
that checkpoint for ``fine_tune['epochs']`` epochs with the config as it stands.  The first step
of the classifiers trains on the plain photo scenes (``data/digit_scenes_plain``, written with
no varied scenes); that of a detector whose ``fine_tune`` names a ``first_scale`` trains at that
input size (every ``scale`` of its pipelines), the second at the config's own.  The
last checkpoint is exported to ``demo/checkpoints/<NAME>.pth`` (fp16 weights plus the class
names) and that exported file is evaluated on the held-out test split; the numbers go to
``demo/checkpoints/<NAME>.json``.

Examples::

    python tools/train_demo.py cls_resnet          # one model
    python tools/train_demo.py all                 # every model, one after the other
    python tools/train_demo.py det_yolov5 --eval-only
"""
from __future__ import annotations

import argparse
import json
import os
import os.path as osp
import subprocess
import sys
import time
from typing import Dict, List, Optional, Sequence, Tuple

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
DATA_ROOT = osp.join(REPO, 'data', 'digit_scenes')
CKPT_DIR = osp.join(REPO, 'demo', 'checkpoints')
#: name -> (OpenMMLab package whose tools/train.py trains it, metric reported, its bar)
MODELS: Dict[str, tuple] = {
    'cls_resnet': ('mmpretrain', 'accuracy/top1', 95.0),
    'cls_vit': ('mmpretrain', 'accuracy/top1', 95.0),
    'det_yolov5': ('mmyolo', 'coco/bbox_mAP_50', 0.80),
    'det_rtmdet': ('mmyolo', 'coco/bbox_mAP_50', 0.80),
    'det_yolox': ('mmyolo', 'coco/bbox_mAP_50', 0.80),
    'det_yolov6': ('mmyolo', 'coco/bbox_mAP_50', 0.80),
    'det_faster_rcnn': ('mmdet', 'coco/bbox_mAP_50', 0.80),
    'det_retinanet': ('mmdet', 'coco/bbox_mAP_50', 0.80),
}
SEED = 0


def ensure_data(seed: int = SEED) -> None:
    """Generate the digit scenes into data/digit_scenes unless they are there already."""
    if osp.exists(osp.join(DATA_ROOT, 'meta.json')):
        return
    from mmcam.datasets.digit_scenes import write_all
    print(f'[train_demo] writing the digit scenes (seed {seed}) to {DATA_ROOT} ...', flush=True)
    write_all(DATA_ROOT, seed)


def train_script(package: str) -> str:
    """Path of the ``tools/train.py`` that ships inside ``package``'s wheel."""
    mod = __import__(package)
    path = osp.join(osp.dirname(mod.__file__), '.mim', 'tools', 'train.py')
    if not osp.exists(path):
        raise FileNotFoundError(f'{package} does not ship {path}; the demo models are trained '
                                f'with the entry point of the pinned {package} wheel. Re-run '
                                'scripts/setup.sh to install the pinned stack.')
    return path


PLAIN_ROOT = osp.join(REPO, 'data', 'digit_scenes_plain')


def steps(name: str, work_dir: str) -> List[Tuple[str, List[str]]]:
    """``(work dir, --cfg-options)`` of each training step of ``name``: one, or for a config
    with ``fine_tune = dict(epochs, lr, warmup_iters[, first_scale])`` two, the second starting
    from the first one's last checkpoint."""
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'demo', f'{name}.py'))
    fine_tune = cfg.get('fine_tune')
    if not fine_tune:
        return [(work_dir, [])]
    if 'first_scale' in fine_tune:
        first = _scale_options(cfg, fine_tune['first_scale'])
    else:
        first = [f'train_dataloader.dataset.data_root={PLAIN_ROOT}/cls/']
    scratch = osp.join(work_dir, 'scratch')
    epochs = fine_tune['epochs']
    return [(scratch, first),
            (work_dir, [f'load_from={osp.join(scratch, "last_checkpoint")}',
                        f'train_cfg.max_epochs={epochs}',
                        f'optim_wrapper.optimizer.lr={fine_tune["lr"]}',
                        'param_scheduler.0.start_factor=0.1',
                        f'param_scheduler.0.end={fine_tune["warmup_iters"]}',
                        f'param_scheduler.1.T_max={epochs}', f'param_scheduler.1.end={epochs}'])]


def _scale_options(cfg, scale: Sequence[int]) -> List[str]:
    """--cfg-options that set every ``scale`` of the config's data pipelines to ``scale``."""
    options = []
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        for index, step in enumerate(cfg[loader].dataset.pipeline):
            if 'scale' in step:
                options.append(f'{loader}.dataset.pipeline.{index}.scale=({scale[0]},{scale[1]})')
    return options


def ensure_plain_data(seed: int = SEED) -> None:
    """The classifiers' first step trains on the photo scenes alone (no varied ones)."""
    if osp.exists(osp.join(PLAIN_ROOT, 'cls', 'train.txt')):
        return
    from mmcam.datasets.digit_scenes import COUNTS, write_classification
    print(f'[train_demo] writing the plain training scenes (seed {seed}) to {PLAIN_ROOT} ...',
          flush=True)
    write_classification(osp.join(PLAIN_ROOT, 'cls'), 'train', COUNTS['cls']['train'], seed,
                         varied=0.0)


def _resolved(option: str) -> str:
    """``load_from=<dir>/last_checkpoint`` -> the checkpoint that file names."""
    key, value = option.split('=', 1)
    if key == 'load_from' and osp.basename(value) == 'last_checkpoint':
        with open(value) as f:
            return f'{key}={f.read().strip()}'
    return option


def train(name: str, work_dir: str, options: Sequence[str] = ()) -> float:
    """Run the OpenMMLab training of ``name``; return its wall time in seconds."""
    package = MODELS[name][0]
    options = [_resolved(o) for o in options]
    cmd = [sys.executable, train_script(package), osp.join(REPO, 'configs', 'demo', f'{name}.py'),
           '--work-dir', work_dir, '--cfg-options', f'randomness.seed={SEED}', *options]
    # One thread each: on a small, busy CPU, OpenMP threads that spin-wait for each other were
    # several times slower than a single thread.  Set OMP_NUM_THREADS to override.
    env = dict(os.environ)
    env.setdefault('OMP_NUM_THREADS', '1')
    env.setdefault('MKL_NUM_THREADS', env['OMP_NUM_THREADS'])
    print(f'[train_demo] OMP_NUM_THREADS={env["OMP_NUM_THREADS"]} ' + ' '.join(cmd), flush=True)
    start = time.time()
    subprocess.run(cmd, cwd=REPO, check=True, env=env)
    return time.time() - start


def export(work_dir: str, name: str, extra_meta: Optional[dict] = None) -> str:
    """Write the last checkpoint of ``work_dir`` as fp16 weights + class names."""
    import torch
    from mmengine.runner import CheckpointLoader

    from mmcam.datasets.digit_scenes import CLASSES
    last = osp.join(work_dir, 'last_checkpoint')
    if not osp.exists(last):
        raise FileNotFoundError(f'No {last}: the training of {name} did not save a checkpoint. '
                                f'Check the log in {work_dir}.')
    with open(last) as f:
        ckpt_path = f.read().strip()
    ckpt = CheckpointLoader.load_checkpoint(ckpt_path, map_location='cpu')
    state = {k: (v.half() if v.is_floating_point() else v)
             for k, v in ckpt['state_dict'].items()}
    meta = dict(dataset_meta=dict(classes=CLASSES), config=f'configs/demo/{name}.py',
                seed=SEED, epoch=int(ckpt['meta'].get('epoch', -1)))
    meta.update(extra_meta or {})
    os.makedirs(CKPT_DIR, exist_ok=True)
    out = osp.join(CKPT_DIR, f'{name}.pth')
    torch.save(dict(state_dict=state, meta=meta), out)
    return out


def evaluate(name: str, checkpoint: str, work_dir: str) -> Dict[str, float]:
    """Test ``checkpoint`` on the held-out test split with an mmengine Runner."""
    import torch

    import mmcam  # noqa: F401  (allow-lists the checkpoint meta for torch's safe loader)
    from mmengine.config import Config
    from mmengine.runner import Runner

    torch.set_num_threads(int(os.environ.get('OMP_NUM_THREADS', 1)))
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'demo', f'{name}.py'))
    cfg.work_dir = osp.join(work_dir, 'test')
    cfg.load_from = checkpoint
    cfg.custom_hooks = [h for h in cfg.get('custom_hooks', []) if h['type'] != 'EMAHook']
    cfg.test_dataloader.persistent_workers = False
    cfg.test_dataloader.num_workers = 0
    cwd = os.getcwd()
    os.chdir(REPO)  # the configs name the data relative to the repository root
    try:
        metrics = Runner.from_cfg(cfg).test()
    finally:
        os.chdir(cwd)
    return {k: float(v) for k, v in metrics.items()}


def run(name: str, eval_only: bool = False) -> dict:
    """Train (unless ``eval_only``), export and evaluate one demo model."""
    package, key, bar = MODELS[name]
    work_dir = osp.join(REPO, 'work_dirs', 'demo', name)
    ensure_data()
    report_path = osp.join(CKPT_DIR, f'{name}.json')
    report = {}
    if eval_only:
        if osp.exists(report_path):
            with open(report_path) as f:
                report = json.load(f)
    else:
        seconds = 0.0
        for step_dir, options in steps(name, work_dir):
            if any(PLAIN_ROOT in option for option in options):
                ensure_plain_data()
            seconds += train(name, step_dir, options)
        with open(osp.join(DATA_ROOT, 'meta.json')) as f:
            counts = json.load(f)['counts']
        kind = 'cls' if name.startswith('cls') else 'det'
        from mmengine.config import Config
        cfg = Config.fromfile(osp.join(REPO, 'configs', 'demo', f'{name}.py'))
        fine_tune = cfg.get('fine_tune')
        report = dict(train_seconds=round(seconds), train_images=counts[kind]['train'],
                      epochs=cfg.train_cfg.max_epochs, test_images=counts[kind]['test'])
        if fine_tune:
            report['fine_tune_epochs'] = fine_tune['epochs']
        export(work_dir, name)
    checkpoint = osp.join(CKPT_DIR, f'{name}.pth')
    if not osp.exists(checkpoint):
        raise FileNotFoundError(f'{checkpoint} does not exist, so there is nothing to evaluate. '
                                f'Train it first: python tools/train_demo.py {name}')
    metrics = evaluate(name, checkpoint, work_dir)
    report.update(name=name, metric=key, value=metrics[key], bar=bar,
                  meets_bar=metrics[key] >= bar, test_metrics=metrics,
                  checkpoint_bytes=osp.getsize(checkpoint))
    with open(report_path, 'w') as f:
        json.dump(report, f, indent=1)
    verdict = 'meets' if report['meets_bar'] else 'MISSES'
    print(f'[train_demo] {name}: test {key} = {metrics[key]:.4f} ({verdict} the bar {bar}); '
          f'exported {checkpoint} ({report["checkpoint_bytes"] / 1e6:.2f} MB)', flush=True)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('name', choices=[*MODELS, 'all'], help='demo model to re-train')
    parser.add_argument('--eval-only', action='store_true',
                        help='only evaluate the exported demo/checkpoints/<NAME>.pth')
    args = parser.parse_args()
    for name in (MODELS if args.name == 'all' else [args.name]):
        run(name, args.eval_only)


if __name__ == '__main__':
    main()
