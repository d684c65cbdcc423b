"""Memory over long folder runs: does a run of many images hold more memory at its end than
after its first images?

Each tool runs in this process through its command-line entry (``mmcam.cli``) on a folder of
held-out digit scenes; a thread samples the process's resident memory (``/proc/self/statm``)
and counts the pictures written, so the memory after image K can be read off.

    python benchmarks/long_run.py [--images 500] [--boxam-images 200]
"""
from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable, List, Tuple

REPO = Path(__file__).resolve().parents[1]


def rss_mib() -> float:
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE') / 2 ** 20


def sampled_run(run: Callable[[], int], out: Path) -> Tuple[int, List[Tuple[int, float]]]:
    """Run ``run()``; return its exit status and (pictures written, RSS MiB) samples."""
    samples: List[Tuple[int, float]] = []
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            written = sum(1 for _ in out.rglob('*.png')) if out.exists() else 0
            samples.append((written, rss_mib()))
            time.sleep(0.25)
    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    try:
        code = run()
    finally:
        done.set()
        thread.join()
    return code, samples


def rss_at(samples: List[Tuple[int, float]], count: int) -> float:
    """The highest RSS seen while at most ``count`` pictures were written."""
    return max(rss for written, rss in samples if written <= count)


def hooks_left() -> int:
    """Forward/backward hooks on every module still alive in this process."""
    import gc
    from torch import nn
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
               + len(getattr(m, '_backward_pre_hooks', {}))
               for m in gc.get_objects() if isinstance(m, nn.Module))


def measure(images: int, boxam_images: int, root: Path
            ) -> List[Tuple[str, int, float, float, int]]:
    """``(run, images, RSS MiB after 50 pictures, RSS MiB at the end, hooks left)`` for a
    vis_cam folder run and a box-AM folder run."""
    from mmcam.cli import boxam, vis_cam
    from mmcam.datasets.digit_scenes import write_classification, write_detection
    root.mkdir(parents=True, exist_ok=True)
    write_classification(str(root / 'cls'), 'test', images, seed=11)
    write_detection(str(root / 'det'), 'test', boxam_images, seed=11)
    runs = [
        ('tools/vis_cam.py, demo ResNet, GradCAM', images, root / 'out_cls',
         lambda out: vis_cam.main([str(root / 'cls'), str(REPO / 'configs/demo/cls_resnet.py'),
                                   str(REPO / 'demo/checkpoints/cls_resnet.pth'),
                                   '--out-dir', str(out), '--device', 'cpu'])),
        ('demo/boxam_vis_demo.py, demo YOLOv5, gradcam', boxam_images, root / 'out_det',
         lambda out: boxam.main([str(root / 'det'), str(REPO / 'configs/demo/det_yolov5.py'),
                                 str(REPO / 'demo/checkpoints/det_yolov5.pth'),
                                 '--out-dir', str(out), '--device', 'cpu'])),
    ]
    rows = []
    for name, count, out, run in runs:
        shutil.rmtree(out, ignore_errors=True)  # a reused --work-dir holds the last run's pictures
        code, samples = sampled_run(lambda: run(out), out)
        if code != 0:
            raise RuntimeError(f'{name} exited with {code}')
        rows.append((name, count, rss_at(samples, 50), max(rss for _, rss in samples),
                     hooks_left()))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--images', type=int, default=500)
    parser.add_argument('--boxam-images', type=int, default=200)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix='mmcam_long_run_'))
    print('| run | images | RSS after 50 | RSS at the end | growth | hooks left |')
    print('| --- | ---: | ---: | ---: | ---: | ---: |')
    for name, count, early, late, hooks in measure(args.images, args.boxam_images, root):
        print(f'| {name} | {count} | {early:.0f} MiB | {late:.0f} MiB | '
              f'{(late - early) / early:+.1%} | {hooks} |', flush=True)


if __name__ == '__main__':
    main()
