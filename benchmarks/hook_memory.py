"""Resident memory of a long validation with the three hooks drawing on every batch.

A Runner test loop over held-out digit scenes with CAMVisualizationHook and
FeatMapVisualizationHook (demo ResNet), then BoxAMVisualizationHook (demo YOLOv5), each set to
explain every sample (``max_samples`` = the number of images). The resident memory
is sampled from another thread as pictures appear; the table compares the memory after the
first 50 pictures with the most seen at the end.

    python benchmarks/hook_memory.py [--images 400]
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from long_run import rss_at, sampled_run  # benchmarks/ is on the path when run as a script

REPO = Path(__file__).resolve().parents[1]


def runner_cfg(config: str, checkpoint: str, data_root: Path, work_dir: Path, hooks: list,
               ann_file: str = None):
    from mmengine.config import Config
    cfg = Config.fromfile(str(REPO / config))
    cfg.work_dir, cfg.load_from, cfg.log_level = str(work_dir), str(REPO / checkpoint), 'WARNING'
    cfg.test_dataloader.dataset.data_root = str(data_root)
    cfg.test_dataloader.update(num_workers=0, persistent_workers=False, batch_size=4)
    if ann_file:
        cfg.test_evaluator.ann_file = ann_file
        cfg.default_hooks.visualization = dict(type='mmdet.DetVisualizationHook', draw=False)
        cfg.custom_hooks = [h for h in cfg.get('custom_hooks', []) if h['type'] != 'EMAHook']
    cfg.visualizer.name = f'visualizer_{work_dir}'
    cfg.custom_imports = dict(imports=['mmcam'], allow_failed_imports=False)
    cfg.custom_hooks = list(cfg.get('custom_hooks', [])) + hooks
    return cfg


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--images', type=int, default=400)
    args = parser.parse_args()
    from mmengine.runner import Runner

    from mmcam.datasets.digit_scenes import write_classification, write_detection
    root = Path(tempfile.mkdtemp(prefix='mmcam_hook_memory_'))
    n = args.images
    write_classification(str(root / 'cls'), 'test', n, seed=13)
    write_detection(str(root / 'det'), 'test', n, seed=13)
    runs = [
        ('CAM + feature-map hooks, demo ResNet', runner_cfg(
            'configs/demo/cls_resnet.py', 'demo/checkpoints/cls_resnet.pth', root / 'cls',
            root / 'work_cls',
            [dict(type='mmcam.CAMVisualizationHook', phases=['test'], max_samples=n),
             dict(type='mmcam.FeatMapVisualizationHook', phases=['test'], max_samples=n,
                  target_layers=['backbone.layer4'])])),
        ('box-AM hook, demo YOLOv5', runner_cfg(
            'configs/demo/det_yolov5.py', 'demo/checkpoints/det_yolov5.pth', root / 'det',
            root / 'work_det',
            [dict(type='mmcam.BoxAMVisualizationHook', phases=['test'], max_samples=n)],
            ann_file=str(root / 'det' / 'test.json'))),
    ]
    print(f'{n} test images, batches of 4, every sample explained; '
          f'{time.strftime("%Y-%m-%d")}, {os.cpu_count()} cores')
    print('| hooks | pictures | RSS after 50 pictures | RSS at the end | growth |')
    print('| --- | ---: | ---: | ---: | ---: |')
    for name, cfg in runs:
        work_dir = Path(cfg.work_dir)
        _, samples = sampled_run(lambda: Runner.from_cfg(cfg).test(), work_dir)  # metrics unused
        # counted after the run: the sampling thread may not run often on a busy machine
        pictures = sum(1 for _ in work_dir.glob('*/vis_data/vis_image/*.png'))
        early, late = rss_at(samples, 50), max(r for _, r in samples)
        print(f'| {name} | {pictures} | {early:.0f} MiB | {late:.0f} MiB | '
              f'{(late - early) / early:+.1%} |', flush=True)


if __name__ == '__main__':
    main()
